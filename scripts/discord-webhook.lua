-- discord-webhook.lua: posts each failure to a Discord channel at once, and a summary with the
-- counts when the batch ends, with each job's contact sheet (its grid as one picture) attached.
--
-- Options (comfyq.options):
--   url       the channel's webhook URL (or set $DISCORD_WEBHOOK_URL)
--   username  the name the messages appear under (default "comfyq")
--   images    "each" also posts every finished image (its thumbnail) as it is saved;
--             "none" attaches nothing, not even the contact sheets (default: sheets only)
--
--   comfyq run night.json --hook scripts/discord-webhook.lua \
--     --hook-opt discord-webhook.url=https://discord.com/api/webhooks/…

local url = comfyq.options.url or comfyq.env("DISCORD_WEBHOOK_URL")
if not url or url == "" then
  error("no webhook URL: give --hook-opt discord-webhook.url=… or set $DISCORD_WEBHOOK_URL", 0)
end

local images = comfyq.options.images or "sheets"

-- A message, with files attached when given (as a form: payload_json and files[n]).
local function post(content, files)
  if #content > 1900 then content = content:sub(1, 1900) .. "…" end  -- Discord's limit is 2000
  local payload = comfyq.json.encode({ username = comfyq.options.username or "comfyq", content = content })
  local status, reply
  if files and #files > 0 and images ~= "none" then
    local form = { fields = { payload_json = payload }, files = {} }
    for i, path in ipairs(files) do form.files[i] = { name = "files[" .. (i - 1) .. "]", path = path } end
    status, reply = comfyq.http_post(url, form, nil, 30)
  else
    status, reply = comfyq.http_post(url, payload, { ["Content-Type"] = "application/json" }, 10)
  end
  if not status then
    comfyq.log("warn", "Discord: " .. reply)
  elseif status >= 300 then
    comfyq.log("warn", string.format("Discord answered %d: %s", status, reply))
  end
end

local function duration(seconds)
  if seconds < 60 then return string.format("%.0f s", seconds) end
  if seconds < 3600 then return string.format("%d min %02d s", seconds // 60, math.floor(seconds % 60)) end
  return string.format("%d h %02d min", seconds // 3600, math.floor(seconds % 3600) // 60)
end

function on_error(e)
  if e.will_retry then return end
  post(string.format(":x: **%s/%d** failed on %s: %s", e.job, e.item, e.server, e.error.message))
end

function on_complete(e)
  if images ~= "each" then return end
  post(string.format(":white_check_mark: **%s/%d** on %s", e.job, e.item, e.server), e.thumbnails)
end

function on_batch_done(b)
  local lines = {
    string.format("**Batch finished** in %s: %d done, %d failed, %d retried, %d skipped",
      duration(b.elapsed), b.done, b.failed, b.retried, b.skipped),
  }
  for i, failure in ipairs(b.failures) do
    if i > 10 then
      lines[#lines + 1] = string.format("… and %d more", #b.failures - 10)
      break
    end
    lines[#lines + 1] = string.format("• %s/%d: %s", failure.job, failure.item, failure.error)
  end
  local sheets = {}
  for _, report in ipairs(b.reports or {}) do
    if report.contact_sheet and #sheets < 10 then sheets[#sheets + 1] = report.contact_sheet end
  end
  post(table.concat(lines, "\n"), sheets)
end

function on_server(s)
  if s.state == "down" then
    post(string.format(":rotating_light: **%s** is down: %s", s.server, s.reason))
  elseif s.state == "given up" then
    local tail = table.concat(s.log_tail or {}, "\n")
    post(string.format(":skull: comfyq gave up on **%s**: %s%s", s.server, s.reason,
      tail ~= "" and ("\n```\n" .. tail .. "\n```") or ""))
  end
end

function on_pause(p)
  post(string.format(":floppy_disk: **Paused**: %s (resumes by itself once there is room in %s)", p.reason, p.folder))
end

function on_resume(r)
  post(string.format(":arrow_forward: Resumed after %s", duration(r.paused_for)))
end
