-- ntfy.lua: push notifications through ntfy (https://ntfy.sh or your own server) to a phone.
--
-- Options (comfyq.options):
--   topic     the ntfy topic to publish to (required; or set $NTFY_TOPIC)
--   server    the ntfy server (default https://ntfy.sh)
--   token     an access token for a protected topic (or $NTFY_TOKEN)

local topic = comfyq.options.topic or comfyq.env("NTFY_TOPIC")
if not topic or topic == "" then
  error("no topic: give --hook-opt ntfy.topic=… or set $NTFY_TOPIC", 0)
end
local server = (comfyq.options.server or "https://ntfy.sh"):gsub("/+$", "")
local token = comfyq.options.token or comfyq.env("NTFY_TOKEN")

local function publish(title, message, priority, tags)
  local headers = { Title = title, Priority = priority, Tags = tags }
  if token then headers.Authorization = "Bearer " .. token end
  local status, reply = comfyq.http_post(server .. "/" .. topic, message, headers, 10)
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

function on_batch_done(b)
  local tags = b.failed == 0 and "white_check_mark" or "warning"
  publish("comfyq batch finished",
    string.format("%d done, %d failed in %.0f s", b.done, b.failed, b.elapsed), "default", tags)
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
