-- POST one-seat bookings: `wrk -s book.lua URL -- PLAN_FILE`.
-- The plan file has lines `mode sequential|spread`, `run <id>`, `token <jwt>` and `launch <id>`.
-- sequential: every connection books the current launch; a `sold_out` answer moves the thread on to
-- the next one (answers to requests sent before the move are not counted again, so late sold_out
-- answers from the previous launch do not skip a launch). spread: a launch at random per request.
-- Every body is unique (passenger name), tokens of several travelers are rotated per request, and every
-- request carries a fresh Idempotency-Key (`bk-<run>-<thread>-<n>`), as the browser apps send one with
-- every booking.
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local report = require("report")

setup = report.setup

local tokens, launches, mode, run = {}, {}, "spread", "0"
local index, guard = 1, 0
sent, received, booked, sold_out, other, server_errors, moved = 0, 0, 0, 0, 0, 0, 0

function init(args)
   for line in io.lines(args[1]) do
      local key, value = line:match("^(%S+) (%S+)$")
      if key == "token" then
         table.insert(tokens, value)
      elseif key == "launch" then
         table.insert(launches, value)
      elseif key == "mode" then
         mode = value
      elseif key == "run" then
         run = value
      end
   end
   math.randomseed((tid or 1) * 7919)
end

function request()
   sent = sent + 1
   local launch
   if mode == "sequential" then
      launch = launches[math.min(index, #launches)]
   else
      launch = launches[math.random(#launches)]
   end
   local token = tokens[((sent + (tid or 1) * 13) % #tokens) + 1]
   local body = '{"launch_id":"' .. launch .. '","seats":1,"passengers":[{"name":"Passenger ' ..
      (tid or 1) .. "-" .. sent .. '","birth_date":"1990-01-01"}],"card_token":"tok_ok"}'
   return wrk.format("POST", wrk.path, {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = "bk-" .. run .. "-" .. (tid or 1) .. "-" .. sent,
   }, body)
end

function response(status, headers, body)
   received = received + 1
   if status == 201 then
      booked = booked + 1
   elseif status == 409 and body:find('"sold_out"', 1, true) then
      sold_out = sold_out + 1
      if mode == "sequential" and received >= guard then
         index = index + 1
         moved = moved + 1
         guard = sent
      end
   elseif status >= 500 then
      server_errors = server_errors + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   report.done(summary, latency, { "sent", "received", "booked", "sold_out", "server_errors", "other", "moved" })
end
