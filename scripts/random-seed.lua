-- random-seed.lua: an on_submit policy. Gives every item a fresh random seed as it is submitted
-- (each attempt gets a new one), and can skip items whose prompt contains a word.
--
-- Options (comfyq.options):
--   input   the seed input to set (default KSampler.seed)
--   skip    skip items whose "Positive prompt.text" parameter contains this text
--
-- The seed each output got is in its sidecar, under "hook_overrides" and "parameters".

local input = comfyq.options.input or "KSampler.seed"
local skip = comfyq.options.skip

function on_submit(e)
  local prompt = e.params["Positive prompt.text"]
  if skip and prompt and prompt:find(skip, 1, true) then
    comfyq.log("info", string.format("skipping %s/%d: its prompt contains %q", e.job, e.item, skip))
    return false
  end
  return { [input] = math.random(0, (1 << 53) - 1) }
end
