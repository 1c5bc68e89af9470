-- notify-desktop.lua: a desktop notification for the first failure, and one when the batch ends.
--
-- Uses notify-send where it exists (a desktop session); elsewhere the notification goes to the
-- log. Options (comfyq.options):
--   every_failure = "true"   notify every failure, not only the first

local failures = 0

function on_error(e)
  if e.will_retry then return end            -- it will run again: not a failure yet
  failures = failures + 1
  if failures == 1 or comfyq.options.every_failure == "true" then
    comfyq.notify(string.format("comfyq: %s/%d failed", e.job, e.item), e.error.message)
  end
end

function on_batch_done(b)
  local title = string.format("comfyq: %d done, %d failed", b.done, b.failed)
  local body = string.format("finished in %d min %02d s", b.elapsed // 60, math.floor(b.elapsed % 60))
  if b.stop_reason then body = body .. " (" .. b.stop_reason .. ")" end
  comfyq.notify(title, body)
end
