"""Networks: the backbone registry, the classifier, the segmentation and localization models."""
