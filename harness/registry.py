"""The names of the built-in algorithms a manifest may ask for, kept apart from the algorithms.

The manifest's schema checks these names, and the partitioners read validated manifests; with the
names here, the manifest package imports nothing of the algorithms and stands below them.
``harness.partition`` registers an implementation under each name (a test holds the two equal).
"""

SCHEDULES = ("cyclic", "round-robin")
"""Built-in schedules: which (cut, repeat) pairs a sweep runs, in order (the manifest's ``partitioner``)."""

DECIDERS = ("dads", "fixed", "neurosurgeon", "oracle")
"""Built-in deciders: partitioners that pick one cut (the manifest's ``evaluate``, ``harness plan``)."""

PLACEMENT_STRATEGIES = ("cloud-only", "device-only", "dp", "even-split", "exhaustive", "genetic", "ilp")
"""Built-in placement strategies over many hosts (the manifest's ``placement``, ``harness place``)."""

UPLOAD_PLANNERS = ("all-at-once", "efficiency", "ionn", "layerwise", "recursive-efficiency")
"""Built-in upload plans: in which pieces a client uploads a model (the manifest's ``upload.plans``)."""
