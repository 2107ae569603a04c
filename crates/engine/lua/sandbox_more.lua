-- The part of the session sandbox most sessions never use: coroutine resume/wrap/yield/
-- close, `xpcall`, `load`, `print`/`warn` and the standard files, read-only data files,
-- `os.time`, `os.date`, `os.clock`, `os.getenv`, argument-less `math.randomseed`,
-- `require`, and trusted mode.
--
-- `sandbox.lua` loads this chunk on the first call of one of its forwarders and hands it
-- the raw functions it captured before any user code ran (`K`, an array in the order
-- unpacked below; `K[21]`, the session's root coroutine, is set later and read where
-- used). Returns the table of implementations the forwarders call, each under the name
-- its forwarder passes.
local K = ...

-- Fresh copies of stock libraries (the script may have changed the global ones); `K[1]`
-- is the core's private table `P`.
local stock_table = K[1].host.stock_lib("table")

local P, raw_loadfile, raw_searchpath, raw_yield, raw_running, raw_pcall, raw_error, raw_load,
  raw_setmetatable, raw_tostring, raw_type, raw_select, raw_rawget, tointeger, aborting,
  raw_xpcall, raw_getmetatable, stdout, shim_files, rethrow_if_aborting =
  stock_table.unpack(K, 1, 20)
local HOST, USER, host, can_host_yield = K[22], K[23], P.host, P.can_host_yield
local enter, block, unblock = host.enter, host.block, host.unblock

local stock_co, stock_io, stock_os = host.stock_lib("coroutine"), host.stock_lib("io"),
  host.stock_lib("os")
local raw_create, raw_resume, raw_status, raw_close =
  stock_co.create, stock_co.resume, stock_co.status, stock_co.close
local raw_date, raw_iotype = stock_os.date, stock_io.type
local concat, pack, unpack = stock_table.concat, stock_table.pack, stock_table.unpack

local M = {}

-- Stock argument errors for the shims, so no engine-internal name or position leaks. The
-- shims that call this are reached through a forwarder's tail call, so level 3 is the
-- script's frame.
local function check_arg(ok, fname, expected, n, v, argn)
  if ok then return end
  argn = argn or 1
  local got = n < argn and "no value" or raw_type(v)
  raw_error("bad argument #" .. argn .. " to '" .. fname .. "' (" .. expected .. " expected, got "
    .. got .. ")", 3)
end

-- The error of a `setmetatable` call the core shim refused, in the order stock Lua and the
-- sandbox check: the arguments, a `__gc` field, then the protected metatable that is left.
function M.setmetatable_refused(...)
  local t, mt = ...
  local n = raw_select("#", ...)
  check_arg(raw_type(t) == "table", "setmetatable", "table", n, t)
  check_arg(mt == nil and n >= 2 or raw_type(mt) == "table", "setmetatable", "nil or table", n, mt, 2)
  if raw_type(mt) == "table" and raw_rawget(mt, "__gc") ~= nil then
    raw_error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  raw_error("cannot change a protected metatable", 2)
end

-- To-be-closed guards, run on every exit path, errors included (engine.md §13 note 3: a
-- leaked count would block every later host-yield). Both also tell the engine which
-- coroutine runs again (the hook is armed per thread).
local UNBLOCK = raw_setmetatable({}, { __close = function() unblock() enter((raw_running())) end })
local RESTORE = raw_setmetatable({}, { __close = function() enter((raw_running())) end })

function M.xpcall(f, msgh, ...)
  local function guarded(e)
    if aborting() then return e end
    return msgh(e)
  end
  return rethrow_if_aborting(raw_xpcall(f, guarded, ...))
end

function M.yield(...)
  if raw_running() == K[21] then
    raw_error("attempt to yield from outside a coroutine", 0)
  end
  return raw_yield(USER, ...)
end

function M.randomseed(...)
  if raw_select("#", ...) == 0 then return P.randomseed(host.next_seed()) end
  return P.randomseed(...)
end

function M.clock() return host.clock("os_clock") end
function M.getenv(name) return host.getenv(name) end
function M.__tostring(f) return "file (" .. shim_files[f] .. ")" end

local function raw_resume_tracked(co, ...)
  if can_host_yield() then
    local guard <close> = RESTORE
    enter(co)
    return raw_resume(co, ...)
  end
  block()
  local guard <close> = UNBLOCK
  enter(co)
  return raw_resume(co, ...)
end

-- `coroutine.close` runs the coroutine's pending `__close` handlers on its own thread.
local function close_tracked(co)
  local guard <close> = RESTORE
  enter(co)
  return raw_close(co)
end

-- Classifies what a user coroutine handed back and relays host requests and
-- preemptions outward until the coroutine yields to its user or ends.
local function settle(co, ok, ...)
  if not ok then
    if aborting() then raw_error((...), 0) end
    return false, ...
  end
  if raw_status(co) == "dead" then return true, ... end
  local n = raw_select("#", ...)
  if n == 0 then
    -- Preempted inside `co`: pass the preemption outward when possible.
    if can_host_yield() then raw_yield() end
    return settle(co, raw_resume_tracked(co))
  end
  local tag = ...
  if tag == USER then return true, raw_select(2, ...) end
  if tag == HOST then
    return settle(co, raw_resume_tracked(co, raw_yield(HOST, (raw_select(2, ...)))))
  end
  return true, ...
end

local function resume(...)
  local co = ...
  check_arg(raw_type(co) == "thread", "resume", "thread", raw_select("#", ...), co)
  return settle(co, raw_resume_tracked(...))
end

local function wrap_result(co, ok, ...)
  if ok then return ... end
  local err = ...
  if not aborting() then close_tracked(co) end
  if raw_type(err) == "string" then raw_error(err, 2) end
  raw_error(err, 0)
end

M.resume = resume
function M.wrap(...)
  local f = ...
  check_arg(raw_type(f) == "function", "wrap", "function", raw_select("#", ...), f)
  local co = raw_create(f)
  return function(...)
    return wrap_result(co, resume(co, ...))
  end
end
function M.close(...)
  if aborting() then raw_error("session aborted", 0) end
  local co = ...
  check_arg(raw_type(co) == "thread", "close", "thread", raw_select("#", ...), co)
  return close_tracked(co)
end

-- Text chunks only: crafted bytecode can corrupt memory.
function M.load(...)
  local chunk, name = ...
  local n = raw_select("#", ...)
  local tc = raw_type(chunk)
  check_arg(tc == "string" or tc == "function", "load", "function", n, chunk)
  if n >= 4 then return raw_load(chunk, name, "t", (raw_select(4, ...))) end
  return raw_load(chunk, name, "t")
end

-- Output: every line goes to the session log, never to the process stdout.
local function join_args(sep, ...)
  local n = raw_select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = raw_tostring((raw_select(i, ...))) end
  return concat(parts, sep)
end

function M.print(...)
  local text = join_args("\t", ...):gsub("\n+$", "")
  host.log("info", "alc.lua.print", text)
end

function M.warn(...)
  local text = join_args("", ...)
  if text:sub(1, 1) == "@" then return end
  host.log("warn", "alc.lua.warn", text)
end

-- Methods of the standard files (`io.stdout`, `io.stderr`), whose handles the core made.
local std_methods = {}
function std_methods.write(self, ...)
  for i = 1, raw_select("#", ...) do
    local v = raw_select(i, ...)
    local tv = raw_type(v)
    if tv ~= "string" and tv ~= "number" then
      raw_error("bad argument #" .. i .. " to 'write' (string expected, got " .. tv .. ")", 2)
    end
    host.io_write(shim_files[self], v)
  end
  return self
end
function std_methods.flush(self) return self end
function std_methods.setvbuf() return true end
function std_methods.close() return nil, "cannot close standard file" end
function std_methods.lines() raw_error("bad file descriptor", 2) end
function std_methods.read() return nil, "bad file descriptor", 9 end
function std_methods.seek() return nil, "Illegal seek", 29 end

function M.__index(f, k)
  if shim_files[f] == nil then return nil end
  return std_methods[k]
end
function M.write(...) return stdout:write(...) end
function M.flush() return true end

-- Read-only handles over package data files (lua-api.md §1.3): the host reads the whole
-- file (size-capped, journaled by digest) and the handle serves reads from that string.
-- A handle's state lives here, out of the script's reach.
local data_files = raw_setmetatable({}, { __mode = "k" })
local raw_tonumber = tonumber
local str_find, str_sub, str_match = string.find, string.sub, string.match

local function open_state(f, fname)
  local st = data_files[f]
  if st == nil then
    raw_error("bad argument #1 to '" .. fname .. "' (FILE* expected, got " .. raw_type(f) .. ")", 3)
  end
  if st.closed then raw_error("attempt to use a closed file", 3) end
  return st
end

local function read_line(st, keep)
  local data, pos = st.data, st.pos
  if pos > #data then return nil end
  local nl = str_find(data, "\n", pos, true)
  if nl == nil then
    st.pos = #data + 1
    return str_sub(data, pos)
  end
  st.pos = nl + 1
  return str_sub(data, pos, keep and nl or nl - 1)
end

local function read_number(st)
  local data = st.data
  local s = str_find(data, "[^ \t\n\r\f\v]", st.pos)
  if s == nil then
    st.pos = #data + 1
    return nil
  end
  local num = str_match(data, "^[%+%-]?0[xX]%x*%.?%x*", s)
  local exp = "^[pP][%+%-]?%d+"
  if num == nil then
    num = str_match(data, "^[%+%-]?%d*%.?%d*", s)
    exp = "^[eE][%+%-]?%d+"
  end
  num = num .. (str_match(data, exp, s + #num) or "")
  st.pos = s + #num
  return raw_tonumber(num)
end

local function read_chars(st, n)
  local data, pos = st.data, st.pos
  if pos > #data then return nil end
  if n == 0 then return "" end
  local last = n >= #data - pos + 1 and #data or pos + n - 1
  st.pos = last + 1
  return str_sub(data, pos, last)
end

local function read_all(st)
  local data, pos = st.data, st.pos
  if pos <= #data then st.pos = #data + 1 end
  return str_sub(data, pos)
end

-- Reads each format in turn; stops at the first that fails (its value is nil).
local function read_formats(st, fname, n, ...)
  if n == 0 then return read_line(st, false) end
  local out = {}
  for i = 1, n do
    local fmt = raw_select(i, ...)
    local tf = raw_type(fmt)
    local v
    if tf == "number" then
      local k = tointeger(fmt)
      if k == nil then
        raw_error("bad argument #" .. i .. " to '" .. fname
          .. "' (number has no integer representation)", 3)
      end
      v = read_chars(st, k < 0 and #st.data + 1 or k)
    elseif tf == "string" then
      local c = str_sub(fmt, 1, 1)
      if c == "*" then c = str_sub(fmt, 2, 2) end
      if c == "l" then
        v = read_line(st, false)
      elseif c == "L" then
        v = read_line(st, true)
      elseif c == "n" then
        v = read_number(st)
      elseif c == "a" then
        v = read_all(st)
      else
        raw_error("bad argument #" .. i .. " to '" .. fname .. "' (invalid format)", 3)
      end
    else
      raw_error("bad argument #" .. i .. " to '" .. fname .. "' (string expected, got "
        .. tf .. ")", 3)
    end
    out[i] = v
    if v == nil then return unpack(out, 1, i) end
  end
  return unpack(out, 1, n)
end

local data_methods = {}
function data_methods.read(f, ...)
  local st = open_state(f, "read")
  return read_formats(st, "read", raw_select("#", ...), ...)
end
function data_methods.lines(f, ...)
  open_state(f, "lines")
  local fmts = pack(...)
  return function()
    local st = data_files[f]
    if st.closed then raw_error("file is already closed", 2) end
    return read_formats(st, "lines", fmts.n, unpack(fmts, 1, fmts.n))
  end
end
function data_methods.seek(f, whence, offset)
  local st = open_state(f, "seek")
  if whence == nil then whence = "cur" end
  if raw_type(whence) ~= "string" then
    raw_error("bad argument #1 to 'seek' (string expected, got " .. raw_type(whence) .. ")", 2)
  end
  if whence ~= "set" and whence ~= "cur" and whence ~= "end" then
    raw_error("bad argument #1 to 'seek' (invalid option '" .. whence .. "')", 2)
  end
  if offset == nil then offset = 0 end
  if raw_type(offset) ~= "number" then
    raw_error("bad argument #2 to 'seek' (number expected, got " .. raw_type(offset) .. ")", 2)
  end
  local off = tointeger(offset)
  if off == nil then
    raw_error("bad argument #2 to 'seek' (number has no integer representation)", 2)
  end
  local base = 0
  if whence == "cur" then base = st.pos - 1 elseif whence == "end" then base = #st.data end
  local at = base + off
  if at < 0 then return nil, "Invalid argument", 22 end
  st.pos = at + 1
  return at
end
function data_methods.close(f)
  local st = open_state(f, "close")
  st.closed, st.data = true, nil
  return true
end
function data_methods.flush(f)
  open_state(f, "flush")
  return f
end
function data_methods.write(f)
  open_state(f, "write")
  return nil, "read-only file"
end
function data_methods.setvbuf(f)
  open_state(f, "setvbuf")
  return nil, "read-only file"
end

local data_file_mt = {
  __index = data_methods,
  __name = "FILE*",
  __tostring = function(f)
    local st = data_files[f]
    if st == nil or st.closed then return "file (closed)" end
    return "file (" .. str_match(raw_tostring(st), "%S+$") .. ")"
  end,
  __close = function(f)
    local st = data_files[f]
    if st and not st.closed then st.closed, st.data = true, nil end
  end,
}

local function new_data_file(content)
  local f = raw_setmetatable({}, data_file_mt)
  data_files[f] = { data = content, pos = 1, closed = false }
  return f
end

function M.type(obj)
  if shim_files[obj] then return "file" end
  local st = data_files[obj]
  if st ~= nil then return st.closed and "closed file" or "file" end
  return raw_iotype(obj)
end
function M.open(...)
  local path, mode = ...
  local n = raw_select("#", ...)
  local tp = raw_type(path)
  check_arg(tp == "string" or tp == "number", "open", "string", n, path)
  if mode ~= nil then
    check_arg(raw_type(mode) == "string", "open", "string", n, mode, 2)
    if not str_find(mode, "^[rwa]%+?b*$") then
      raw_error("bad argument #2 to 'open' (invalid mode)", 2)
    end
  end
  local content, msg, code = host.io_open(path, mode)
  if content == nil then return nil, msg, code end
  return new_data_file(content)
end

-- Time: the virtual clock only (journaled inputs in durable sessions).
local function days_from_civil(y, m, d)
  y = y + (m - 1) // 12
  m = (m - 1) % 12 + 1
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local function date_field(t, key, default)
  local v = raw_rawget(t, key)
  if v == nil then
    if default == nil then raw_error("field '" .. key .. "' missing in date table", 3) end
    return default
  end
  local i = tointeger(v)
  if i == nil then raw_error("field '" .. key .. "' is not an integer", 3) end
  return i
end

function M.time(t)
  if t == nil then return host.clock("os_time") end
  if raw_type(t) ~= "table" then
    raw_error("bad argument #1 to 'time' (table expected, got " .. raw_type(t) .. ")", 2)
  end
  local days = days_from_civil(date_field(t, "year"), date_field(t, "month"), date_field(t, "day"))
  return days * 86400 + date_field(t, "hour", 12) * 3600 + date_field(t, "min", 0) * 60
    + date_field(t, "sec", 0)
end

function M.date(fmt, t)
  fmt = fmt or "%c"
  if raw_type(fmt) == "string" and fmt:sub(1, 1) ~= "!" then fmt = "!" .. fmt end
  if t == nil then t = host.clock("os_date") end
  return raw_date(fmt, t)
end

-- Module loading: only through the engine's resolver (lua-api.md §1.8).
local loaded = package.loaded
local preload = package.preload
local function preload_searcher(name)
  local f = preload[name]
  if f == nil then return "\n\tno field package.preload['" .. name .. "']" end
  return f, ":preload:"
end
local function engine_searcher(name)
  local source, chunkname, logical = host.resolve_module(name)
  if source == nil then return chunkname end
  local fn, err = raw_load(source, chunkname, "t")
  if fn == nil then
    raw_error("error loading module '" .. name .. "' from '" .. logical .. "':\n\t" .. err, 0)
  end
  return fn, logical
end
M.preload_searcher, M.engine_searcher = preload_searcher, engine_searcher

-- A module body runs in a non-yieldable context (lua-api.md §1.7 rule 3).
local function run_module(f, name, extra)
  block()
  local guard <close> = UNBLOCK
  return raw_pcall(f, name, extra)
end

local function finish_require(name, ok, ...)
  if not ok then
    raw_error((...), 0)
  end
  local value = ...
  if value ~= nil then loaded[name] = value end
  if loaded[name] == nil then loaded[name] = true end
  return loaded[name]
end

function M.require(name)
  local bad = host.check_module_name(name)
  if bad then raw_error(bad, 2) end
  local have = loaded[name]
  if have ~= nil then return have end
  local f, extra = preload_searcher(name)
  local notes = {}
  if raw_type(f) ~= "function" then
    notes[#notes + 1] = f
    f, extra = engine_searcher(name)
    if raw_type(f) ~= "function" then
      notes[#notes + 1] = f
      raw_error("module '" .. name .. "' not found:" .. concat(notes), 2)
    end
  end
  local value = finish_require(name, run_module(f, name, extra))
  return value, extra
end

--- The main function of a package run: `require(name)[entry](ctx)`.
function M.package_main(name, entry)
  return function(ctx)
    local m = require(name)
    local f = raw_type(m) == "table" and m[entry] or nil
    if raw_type(f) ~= "function" then
      raw_error("package '" .. name .. "' has no function '" .. entry .. "'", 0)
    end
    return f(ctx)
  end
end

--- Trusted mode (`[sandbox] trusted = true`): restores the stock file, process and
--- environment functions. Binary chunks, `debug`, `os.exit`, `os.setlocale`, stdout
--- writes, time and randomness stay sandboxed.
function M.enable_trusted()
    local raw_output, raw_fclose = stock_io.output, stock_io.close
  local out = nil -- a default output file set through io.output, else the shim stdout
  io.open, io.read, io.lines, io.input = stock_io.open, stock_io.read, stock_io.lines, stock_io.input
  io.popen, io.tmpfile, io.stdin = stock_io.popen, stock_io.tmpfile, stock_io.stdin
  io.output = function(file)
    if file == nil then return out or stdout end
    if shim_files[file] then
      out = nil
      return stdout
    end
    out = raw_output(file)
    return out
  end
  io.write = function(...)
    if out then return out:write(...) end
    return stdout:write(...)
  end
  io.flush = function()
    if out then return out:flush() end
    return true
  end
  io.close = function(file)
    if file == nil then
      if out == nil then return stdout:close() end
      file = out
    end
    if shim_files[file] then return file:close() end
    return raw_fclose(file)
  end
  os.execute, os.remove, os.rename = stock_os.execute, stock_os.remove, stock_os.rename
  os.tmpname, os.getenv = stock_os.tmpname, stock_os.getenv
  loadfile = function(...)
    local n = raw_select("#", ...)
    local filename, _, env = ...
    if n >= 3 then return raw_loadfile(filename, "t", env) end
    return raw_loadfile(filename, "t")
  end
  dofile = function(filename)
    local f, err = raw_loadfile(filename, "t")
    if f == nil then raw_error(err, 2) end
    return f()
  end
  package.searchpath = raw_searchpath
end

return M
