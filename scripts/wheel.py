"""Writes comfyq's Python wheel from a laid-out release (scripts/package.sh calls it).

    wheel.py ROOT OUT VERSION GLIBC ARCH     prints the wheel's path

ROOT holds bin/comfyq, lib/comfyq/ and share/. The wheel carries no Python code: the binary is a
script of the wheel (`comfyq-VERSION.data/scripts/comfyq`, installed on the PATH of the
environment, as ruff and uv ship theirs), and lib/ and share/ are its data
(`.data/data/…`, installed under the environment's prefix: PREFIX/lib/comfyq beside PREFIX/bin,
where the binary looks for its libraries). The tag says the oldest glibc it needs
(manylinux_X_Y_ARCH) and that it fits any Python 3.
"""
import base64
import hashlib
import os
import sys
import zipfile

root, out, version, glibc, arch = sys.argv[1:6]
major, minor = glibc.split(".")
tag = f"py3-none-manylinux_{major}_{minor}_{arch}"
name = f"comfyq-{version}-{tag}.whl"
data = f"comfyq-{version}.data"
info = f"comfyq-{version}.dist-info"

files = []  # (path in the wheel, bytes, mode)
def add(path, content, mode=0o644):
    files.append((path, content, mode))

add(f"{data}/scripts/comfyq", open(os.path.join(root, "bin/comfyq"), "rb").read(), 0o755)
for folder in ("lib", "share"):
    for directory, _, names in sorted(os.walk(os.path.join(root, folder))):
        for file in sorted(names):
            full = os.path.join(directory, file)
            relative = os.path.relpath(full, root)
            add(f"{data}/data/{relative}", open(full, "rb").read())

add(f"{info}/METADATA", f"""Metadata-Version: 2.1
Name: comfyq
Version: {version}
Summary: Run ComfyUI batches overnight: a durable queue, many servers, progress you can trust
Requires-Python: >=3.8
Description-Content-Type: text/plain

comfyq as one program: `comfyq --help` after `pip install`. Linux ({arch}, glibc {glibc} or newer).
""".encode())
add(f"{info}/WHEEL", f"""Wheel-Version: 1.0
Generator: comfyq scripts/wheel.py
Root-Is-Purelib: false
Tag: {tag}
""".encode())

def digest(content):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()

record = "".join(f"{path},{digest(content)},{len(content)}\n" for path, content, _ in files) + f"{info}/RECORD,,\n"
add(f"{info}/RECORD", record.encode())

os.makedirs(out, exist_ok=True)
target = os.path.join(out, name)
with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
    for path, content, mode in files:
        entry = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
        entry.external_attr = (0o100000 | mode) << 16
        entry.compress_type = zipfile.ZIP_DEFLATED
        wheel.writestr(entry, content)
print(target)
