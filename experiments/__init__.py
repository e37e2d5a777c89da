"""User extension code: models, datasets, partitioners, referenced from manifests as ``module:function``."""
