-- A Lua job file: the same fields as a JSON job, built by code. This one reads prompts.txt
-- (beside it) and gives each prompt three CFG scales, with a style suffix on every prompt.
-- 4 prompts × 3 cfg = 12 items.

local prompts = {}
for line in io.lines(JOB_DIR .. "/prompts.txt") do
  if line ~= "" and not line:match("^#") then
    prompts[#prompts + 1] = line .. ", soft light, 35mm photo"
  end
end

return {
  name = "prompts-from-file",
  workflow = "workflows/txt2img.json",
  set = { ["KSampler.steps"] = 20 },
  matrix = {
    ["Positive prompt.text"] = prompts,
    ["KSampler.cfg"] = { 5.0, 6.5, 8.0 },
  },
  output = { folder = "../out/prompts-from-file", name = "{job}_{index}_cfg{cfg}" },
}
