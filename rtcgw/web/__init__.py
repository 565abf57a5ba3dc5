"""The web phone's files (``static/``), served by the supervisor under ``[web] path``.

``static/vendor/jssip.min.js`` is copied from the pinned npm package by ``make web``.
"""

__all__: list[str] = []
