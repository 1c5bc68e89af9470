print("comfyq-bench")
