-- wrk script: the notifications baseline. POSTs the webhook body notifier
-- sent for a real event (read from the file BENCH_WEBHOOK_BODY) straight to
-- sp-sandbox's /notifications, with the headers notifier sends
-- (Content-Type and a distinct X-Millom-Delivery-Id per request), so the
-- baseline is "one HTTP POST of the same bytes per event".
local counter = 0
local body, prefix

function setup(thread)
  thread:set("id", tostring(math.random(1, 1000000000)) .. "-" .. tostring(os.time()))
end

function init(args)
  local path = os.getenv("BENCH_WEBHOOK_BODY")
  local f = assert(io.open(path or "", "rb"), "BENCH_WEBHOOK_BODY: cannot open " .. tostring(path))
  body = f:read("*a")
  f:close()
  prefix = "bench-baseline-" .. id .. "-"
end

request = function()
  counter = counter + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Millom-Delivery-Id"] = prefix .. counter,
  }, body)
end
