-- wrk script: POST /v1/decisions for random demo users (u1..u100000), 20 organic posts each.
-- Usage: ADSERVE_ADMIN_KEY=KEY wrk -t2 -c32 -d20s -s scripts/decisions.lua http://127.0.0.1:8080
local key = os.getenv("ADSERVE_ADMIN_KEY") or "demo"
local devices = { "ios", "android", "web" }
math.randomseed(7)
request = function()
  local body = string.format('{"user_id":"u%d","context":{"device":"%s","hour":%d},"organic_count":20}',
    math.random(1, 100000), devices[math.random(1, 3)], math.random(0, 23))
  return wrk.format("POST", "/v1/decisions", { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }, body)
end
