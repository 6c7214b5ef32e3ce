"""Names the dynamics command line offers, kept apart from the modules that compute (which load torch)."""

REGULARISERS = ("none", "r1", "r2", "gp", "noise", "consensus")
