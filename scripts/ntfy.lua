-- ntfy.lua: push notifications through ntfy (https://ntfy.sh or your own server) to a phone.
--
-- Options (comfyq.options):
--   topic     the ntfy topic to publish to (required; or set $NTFY_TOPIC)
--   server    the ntfy server (default https://ntfy.sh)
--   token     an access token for a protected topic (or $NTFY_TOKEN)
--   images    "each" also sends every finished image (its thumbnail) as it is saved;
--             "none" attaches nothing (default: the contact sheet of each job at the end)

local topic = comfyq.options.topic or comfyq.env("NTFY_TOPIC")
if not topic or topic == "" then
  error("no topic: give --hook-opt ntfy.topic=… or set $NTFY_TOPIC", 0)
end
local server = (comfyq.options.server or "https://ntfy.sh"):gsub("/+$", "")
local token = comfyq.options.token or comfyq.env("NTFY_TOKEN")

local images = comfyq.options.images or "sheets"

-- A notification; with `attachment`, the file is the body and the message goes in a header.
local function publish(title, message, priority, tags, attachment)
  local headers = { Title = title, Priority = priority, Tags = tags }
  if token then headers.Authorization = "Bearer " .. token end
  local body = message
  if attachment and images ~= "none" then
    headers.Message = message:gsub("\n", "\\n")
    headers.Filename = attachment:match("[^/]+$")
    body = { file = attachment }
  end
  local status, reply = comfyq.http_post(server .. "/" .. topic, body, headers, 30)
  if not status then
    comfyq.log("warn", "ntfy: " .. reply)
  elseif status >= 300 then
    comfyq.log("warn", string.format("ntfy answered %d: %s", status, reply))
  end
end

function on_error(e)
  if e.will_retry then return end
  publish(string.format("%s/%d failed", e.job, e.item), e.error.message, "high", "x")
end

function on_complete(e)
  if images ~= "each" or not e.thumbnails or #e.thumbnails == 0 then return end
  publish(string.format("%s/%d done", e.job, e.item), "on " .. e.server, "low", "frame_with_picture", e.thumbnails[1])
end

function on_batch_done(b)
  local tags = b.failed == 0 and "white_check_mark" or "warning"
  local summary = string.format("%d done, %d failed in %.0f s", b.done, b.failed, b.elapsed)
  local reports = b.reports or {}
  if #reports == 0 or images == "none" then
    publish("comfyq batch finished", summary, "default", tags)
    return
  end
  -- One notification per job, each with its contact sheet (ntfy takes one attachment a message).
  for _, report in ipairs(reports) do
    publish("comfyq: " .. report.job .. " finished", summary, "default", tags, report.contact_sheet)
  end
end

-- A server that went down (it is being restarted, or waited for) and one comfyq gave up on.
function on_server(s)
  if s.state == "down" then
    publish("comfyq: " .. s.server .. " is down", s.reason, "high", "rotating_light")
  elseif s.state == "given up" then
    local tail = table.concat(s.log_tail or {}, "\n")
    publish("comfyq gave up on " .. s.server, s.reason .. (tail ~= "" and ("\n\n" .. tail) or ""), "urgent", "skull")
  elseif s.state == "up" and s.previous_state ~= "checking" and s.previous_state ~= "starting" then
    publish("comfyq: " .. s.server .. " is back", string.format("after %.0f s", s.down_for or 0), "low", "white_check_mark")
  end
end

function on_pause(p)
  publish("comfyq paused: disk full", p.reason, "urgent", "floppy_disk")
end
