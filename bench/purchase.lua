-- wrk script: POST purchases with transids never used before, spread over
-- many subscribers as production traffic is (Kafka keys purchases by
-- subscriber, so one subscriber would put them all in one partition).
--
-- BENCH_PURCHASE_TABLE names a Lua file that returns the subscribers:
--   return { {m = "924542620000", c = "<offerContext>"}, ... }
-- (scripts/bench.sh writes it after creating them at mno-sandbox and asking
-- upsellOffer for each one's offerContext). Requests take the subscribers
-- in turn: thread t of n sends to subscribers t, t+n, t+2n, ... (mod the
-- count), so every subscriber gets the same share.
--
-- BENCH_BODY selects the shape: "millom" (purchasePlan ActivationRequest to
-- api-edge) or "backend" (the operator's /activate, for the nginx
-- baseline). BENCH_THREADS is wrk's -t.
local counter = 0
local prefix, subs, nthreads, backend
local plan = "tp-loan-social-200mb"
local sp = "testserviceprovider"
local headers = {["Content-Type"] = "application/json"}
local threads_created = 0

function setup(thread)
  -- Each wrk thread gets its own id, so transids never collide, and its
  -- own place in the round robin.
  thread:set("id", tostring(math.random(1, 1000000000)) .. "-" .. tostring(os.time()))
  thread:set("tindex", threads_created)
  threads_created = threads_created + 1
end

function init(args)
  prefix = "bench-" .. id
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "1") or 1
  backend = os.getenv("BENCH_BODY") == "backend"
  local path = os.getenv("BENCH_PURCHASE_TABLE")
  if not path or path == "" then
    error("BENCH_PURCHASE_TABLE is not set")
  end
  subs = dofile(path)
  if #subs == 0 then
    error(path .. " lists no subscribers")
  end
end

request = function()
  local s = subs[(tindex + counter * nthreads) % #subs + 1]
  counter = counter + 1
  local transid = prefix .. "-" .. counter
  local path, body
  if backend then
    path = "/activate/" .. s.m .. "?customerIdType=MSISDN"
    body = '{"channelId":"App","serviceProviderId":"' .. sp .. '","offerId":"' .. plan ..
           '","transId":"' .. transid .. '","fundSource":"LOAN"}'
  else
    -- The subscriber's offerContext from upsellOffer, as an SP sends it (it
    -- binds plan, subscriber and price, not the transid, so one serves
    -- every purchase of that subscriber).
    path = "/std/" .. sp .. "/tp/" .. s.m .. "/purchasePlan"
    body = '{"transid":"' .. transid .. '","planid":"' .. plan .. '","fundSource":"LOAN",' ..
           '"offercontext":"' .. s.c .. '"}'
  end
  return wrk.format("POST", path, headers, body)
end
