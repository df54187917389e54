"""Monitoring production traffic: drift against the training set, agreement with the teacher,
latency and routing, judged against the spec's thresholds (``graduate monitor``)."""

from graduate.monitor.report import MonitorResult, monitor_project

__all__ = ["MonitorResult", "monitor_project"]
