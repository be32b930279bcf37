"""Trainer for SSDLite detectors: ``python -m training.train --help``."""
