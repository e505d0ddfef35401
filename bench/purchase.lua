-- wrk script: POST a purchase with a transid never used before.
-- BENCH_BODY selects the shape: "millom" (purchasePlan ActivationRequest)
-- or "backend" (the operator's /activate body, for the nginx baseline).
local counter = 0
local prefix

function setup(thread)
  -- Each wrk thread gets its own id, so transids never collide.
  thread:set("id", tostring(math.random(1, 1000000000)) .. "-" .. tostring(os.time()))
end

function init(args)
  prefix = "bench-" .. id
end

request = function()
  counter = counter + 1
  local transid = prefix .. "-" .. counter
  local body
  if os.getenv("BENCH_BODY") == "backend" then
    body = '{"channelId":"App","serviceProviderId":"testserviceprovider",' ..
           '"offerId":"tp-loan-social-200mb","transId":"' .. transid .. '","fundSource":"LOAN"}'
  else
    -- The offerContext from upsellOffer, as an SP sends it (it binds plan,
    -- subscriber and price, not the transid, so one serves every request).
    local ctx = os.getenv("BENCH_OFFER_CONTEXT") or ""
    body = '{"transid":"' .. transid .. '","planid":"tp-loan-social-200mb","fundSource":"LOAN"' ..
           (ctx ~= "" and (',"offercontext":"' .. ctx .. '"') or "") .. '}'
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
