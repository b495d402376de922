-- wrk script for the get-public cross-check: GET /api/v1/public/media/{id} for random ids
-- from the file named by the IDS environment variable (one id per line).
local ids = {}
for line in io.lines(os.getenv("IDS")) do
  if #line > 0 then ids[#ids + 1] = line end
end

request = function()
  return wrk.format("GET", "/api/v1/public/media/" .. ids[math.random(#ids)])
end
