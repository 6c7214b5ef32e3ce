"""Sample-quality metrics, offline: FID, KID, precision/recall, density/coverage, classifier score, mode
coverage and memorisation, on gankit's domain classifier (or Inception-v3 from local weights).

Each metric registers itself by name (`METRICS`); `evaluate_images` and `evaluate_run` score generated
images against a dataset's test split and report the real-versus-real floor with every result.
"""
from .classifier import DomainClassifier, load_classifier, predict_logits, train_classifier
from .evaluate import DEFAULT_METRICS, evaluate_features, evaluate_images, evaluate_run, read_images, write_result
from .extractors import Extractor, domain_extractor, inception_extractor, resolve_extractor
from .frechet import feature_statistics, fid, frechet_distance
from .kid import kid
from .manifold import density_coverage, knn_radii, manifold_indicators, precision_recall
from .memorisation import memorisation, nn_distances
from .registry import METRICS, FeatureSet, MetricInputs, get_metrics, register
from .scores import class_coverage, classifier_score

__all__ = ["DEFAULT_METRICS", "METRICS", "DomainClassifier", "Extractor", "FeatureSet", "MetricInputs",
           "class_coverage", "classifier_score", "density_coverage", "domain_extractor", "evaluate_features",
           "evaluate_images", "evaluate_run", "feature_statistics", "fid", "frechet_distance", "get_metrics",
           "inception_extractor", "kid", "knn_radii", "load_classifier", "manifold_indicators", "memorisation",
           "nn_distances", "precision_recall", "predict_logits", "read_images", "register", "resolve_extractor",
           "train_classifier", "write_result"]
