"""comfyq inside ComfyUI: queue the workflow on screen as a comfyq batch, watch the night in a sidebar.

Installed by `comfyq comfyui install [COMFYUI_DIR]` (and removed by `--uninstall`). It adds no nodes:
its web directory holds the page's extension, which talks to `comfyq serve` (see comfyq.json
beside it, and comfyq's README, "comfyq inside ComfyUI").
"""

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
