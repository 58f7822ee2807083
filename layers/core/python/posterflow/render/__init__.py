"""Headless-Chromium poster rendering: sizes, network policy and the warm browser engine.
Fabric.js canvases render through :mod:`posterflow.render.canvas` (imported on its own: it
depends on ``posterflow.posters.canvas.spec``, which imports this package's sizes).

Typical use from a synchronous handler::

    from posterflow.render import RenderRequest, get_engine, resolve_size

    result = get_engine().render(RenderRequest(html=html, format="png", size=resolve_size("story")))
"""

from posterflow.net.policy import AllowRule, AssetBucket, NetPolicy
from posterflow.render.engine import (
    BrowserCrashed,
    ChromiumNotFound,
    EngineConfig,
    RenderEngine,
    RenderError,
    RenderRequest,
    RenderResult,
    RenderTimeout,
    get_engine,
    shutdown_engine,
)
from posterflow.render.sizes import (
    CONTENT_TYPES,
    EXTENSIONS,
    PRESETS,
    OutputFormat,
    PageSize,
    UnsupportedFormat,
    UnsupportedSize,
    parse_format,
    resolve_size,
)

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "PRESETS",
    "AllowRule",
    "AssetBucket",
    "BrowserCrashed",
    "ChromiumNotFound",
    "EngineConfig",
    "NetPolicy",
    "OutputFormat",
    "PageSize",
    "RenderEngine",
    "RenderError",
    "RenderRequest",
    "RenderResult",
    "RenderTimeout",
    "UnsupportedFormat",
    "UnsupportedSize",
    "get_engine",
    "parse_format",
    "resolve_size",
    "shutdown_engine",
]
