"""Writes a small picture with a workflow in it the way ComfyUI's save nodes do (Pillow, as
ComfyUI itself uses), for comfyq's tests: a real ComfyUI needs torch, which a test machine
does not have.

    comfy_save.py KIND PROMPT.json|- WORKFLOW.json|- OUT

KIND: png (SaveImage: PngInfo.add_text, tEXt chunks, compress_level 4), png-itxt (compressed
iTXt chunks, as other savers write), png-ztxt (zTXt chunks), webp (SaveAnimatedWEBP: EXIF
0x0110 "prompt:…" and 0x010F "workflow:…").
"""
import json
import sys

from PIL import Image
from PIL.PngImagePlugin import PngInfo

kind, prompt_path, workflow_path, out = sys.argv[1:5]
prompt = None if prompt_path == "-" else json.load(open(prompt_path))
workflow = None if workflow_path == "-" else json.load(open(workflow_path))
image = Image.new("RGB", (16, 16), (200, 120, 40))
if kind.startswith("png"):
    metadata = PngInfo()
    for key, value in (("prompt", prompt), ("workflow", workflow)):
        if value is None:
            continue
        if kind == "png":
            metadata.add_text(key, json.dumps(value))
        elif kind == "png-itxt":
            metadata.add_itxt(key, json.dumps(value), zip=True)
        else:
            metadata.add_text(key, json.dumps(value), zip=True)
    image.save(out, format="PNG", pnginfo=metadata, compress_level=4)
elif kind == "webp":
    exif = image.getexif()
    if prompt is not None:
        exif[0x0110] = "prompt:{}".format(json.dumps(prompt))
    if workflow is not None:
        exif[0x010F] = "workflow:{}".format(json.dumps(workflow))
    image.save(out, format="WEBP", exif=exif, lossless=True)
else:
    sys.exit("unknown kind " + kind)
