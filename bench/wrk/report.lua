-- Shared by the wrk scripts of `python -m bench`: one JSON line (prefixed WRKJSON) with what wrk saw.
-- Counters a script keeps per thread (booked, sold_out, ...) are summed over the threads.

local report = {}
local threads = {}

function report.setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

local function sum(name)
   local total = 0
   for _, t in ipairs(threads) do
      total = total + (t:get(name) or 0)
   end
   return total
end

function report.done(summary, latency, counters)
   local e = summary.errors
   local parts = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"bytes":%d', summary.bytes),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
         e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}',
         latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
         latency:percentile(99.9), latency.max),
      string.format('"threads":%d', #threads),
   }
   for _, name in ipairs(counters or {}) do
      table.insert(parts, string.format('"%s":%d', name, sum(name)))
   end
   io.write("WRKJSON {" .. table.concat(parts, ",") .. "}\n")
end

return report
