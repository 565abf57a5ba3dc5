"""The worker process: a complete B2BUA with its media relay (DESIGN.md section 1).

``rtcgw.worker.b2bua`` is the sans-IO call logic; the trio runtime around it lives in the
other modules of this package.
"""

__all__: list[str] = []
