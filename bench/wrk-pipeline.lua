-- wrk script: HTTP/1.1 pipelining. Each connection sends PIPELINE requests (default 8) back to back,
-- then reads their answers in order; wrk times each batch from its first byte sent.
--   PIPELINE=8 wrk -t2 -c64 -d15s -s bench/wrk-pipeline.lua http://127.0.0.1:8080/api/v1/channels
local depth = tonumber(os.getenv("PIPELINE") or "8")
init = function(args)
   local batch = {}
   for i = 1, depth do batch[i] = wrk.format(nil) end
   req = table.concat(batch)
end
request = function() return req end
