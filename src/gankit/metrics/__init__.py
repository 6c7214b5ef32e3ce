"""Sample-quality metrics on gankit's offline domain classifier."""
from .classifier import DomainClassifier, load_classifier, predict_logits, train_classifier
from .scores import class_coverage, classifier_score

__all__ = ["DomainClassifier", "class_coverage", "classifier_score", "load_classifier", "predict_logits",
           "train_classifier"]
