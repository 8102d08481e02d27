"""csm-agent: snapshots real environments and reports them to csm."""

__version__ = "1.0.0"
