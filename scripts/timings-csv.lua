-- timings-csv.lua: one CSV row per output file, with how long each phase took.
--
-- Options (comfyq.options):
--   file   the CSV file to append to (default comfyq-timings.csv in the current folder)
--
-- Columns: finished, job, item, prompt_id, server, attempt, output, queued, setup, sampling,
-- decoding, saving, total (seconds). The header is written when the file is new.

local path = comfyq.options.file or "comfyq-timings.csv"
local columns = { "queued", "setup", "sampling", "decoding", "saving" }

local function csv(value)
  value = tostring(value)
  if value:find('[,"\n]') then value = '"' .. value:gsub('"', '""') .. '"' end
  return value
end

local existing = io.open(path, "r")
if existing then
  existing:close()
else
  local file = assert(io.open(path, "w"))
  file:write("finished,job,item,prompt_id,server,attempt,output,queued,setup,sampling,decoding,saving,total\n")
  file:close()
end

function on_complete(e)
  local file = assert(io.open(path, "a"))
  for _, output in ipairs(e.outputs) do
    local row = { os.date("!%Y-%m-%dT%H:%M:%SZ"), e.job, e.item, e.prompt_id, e.server, e.attempt, output }
    for _, phase in ipairs(columns) do row[#row + 1] = string.format("%.3f", e.timings[phase] or 0) end
    row[#row + 1] = string.format("%.3f", e.elapsed)
    for i, value in ipairs(row) do row[i] = csv(value) end
    file:write(table.concat(row, ","), "\n")
  end
  file:close()
end
