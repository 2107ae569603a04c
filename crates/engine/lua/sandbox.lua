-- The session sandbox: shims over the stock library and the host-yield protocol.
--
-- This chunk runs once per VM, before any user code, with the stock globals still in
-- place. It captures the raw functions it needs as locals (upvalues nothing else can
-- reach: the `debug` library is never opened), replaces or removes globals, and returns
-- the entry function the engine turns into the session's root coroutine.
--
-- Yield kinds (engine.md §4.4, §13 note 2): a host request yields `(HOST, token)`, a
-- user `coroutine.yield` yields `(USER, ...)`, a hook preemption yields nothing at all.
local P = ...

local HOST, USER = P.HOST, P.USER
local host = P.host

local raw_create = coroutine.create
local raw_resume = coroutine.resume
local raw_yield = coroutine.yield
local raw_status = coroutine.status
local raw_running = coroutine.running
local raw_isyieldable = coroutine.isyieldable
local raw_close = coroutine.close
local raw_pcall = pcall
local raw_xpcall = xpcall
local raw_error = error
local raw_load = load
local raw_setmetatable = setmetatable
local raw_tostring = tostring
local raw_type = type
local raw_select = select
local raw_rawget = rawget
local raw_getmetatable = getmetatable
local raw_randomseed = math.randomseed
local raw_date = os.date
local raw_iotype = io.type
-- Stock functions trusted mode restores (lua-api.md §1, "Trusted mode"); private to P.
local stock = {
  io_open = io.open, io_read = io.read, io_lines = io.lines, io_input = io.input,
  io_output = io.output, io_close = io.close, io_popen = io.popen, io_tmpfile = io.tmpfile,
  io_stdin = io.stdin,
  os_execute = os.execute, os_remove = os.remove, os_rename = os.rename,
  os_tmpname = os.tmpname, os_getenv = os.getenv,
  loadfile = loadfile, searchpath = package.searchpath,
}
local tointeger = math.tointeger
local concat = table.concat
local pack = table.pack

local aborting = host.aborting
local enter = host.enter

-- The root coroutine of the session; set by `entry`.
local MAIN = nil

-- The chain of user coroutines resumed through the shims (engine.md §4.3): a host
-- request may pause only when no frame in it was resumed from a context that cannot
-- yield. Such frames are counted in the VM host (one C call per update: a preemption can
-- fall between two Lua instructions, never inside a C function).
local block, unblock, blocked = host.block, host.unblock, host.blocked

local function can_host_yield()
  return raw_isyieldable() and blocked() == 0
end
P.can_host_yield = can_host_yield

-- To-be-closed guards, run on every exit path, errors included (engine.md §13 note 3: a
-- leaked count would block every later host-yield). Both also tell the engine which
-- coroutine runs again (the hook is armed per thread).
local UNBLOCK = raw_setmetatable({}, { __close = function() unblock() enter((raw_running())) end })
local RESTORE = raw_setmetatable({}, { __close = function() enter((raw_running())) end })

-- Re-raises an error caught while the VM is aborting, so nothing can swallow an abort.
local function rethrow_if_aborting(ok, ...)
  if not ok and aborting() then raw_error((...), 0) end
  return ok, ...
end

pcall = function(f, ...)
  return rethrow_if_aborting(raw_pcall(f, ...))
end

xpcall = function(f, msgh, ...)
  local function guarded(e)
    if aborting() then return e end
    return msgh(e)
  end
  return rethrow_if_aborting(raw_xpcall(f, guarded, ...))
end

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

-- Stock argument errors for the shims, so no engine-internal name or position leaks.
local function check_arg(ok, fname, expected, n, v, argn)
  if ok then return end
  argn = argn or 1
  local got = n < argn and "no value" or raw_type(v)
  raw_error("bad argument #" .. argn .. " to '" .. fname .. "' (" .. expected .. " expected, got "
    .. got .. ")", 3)
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

coroutine.resume = resume
coroutine.wrap = function(...)
  local f = ...
  check_arg(raw_type(f) == "function", "wrap", "function", raw_select("#", ...), f)
  local co = raw_create(f)
  return function(...)
    return wrap_result(co, resume(co, ...))
  end
end
coroutine.yield = function(...)
  if raw_running() == MAIN then
    raw_error("attempt to yield from outside a coroutine", 0)
  end
  return raw_yield(USER, ...)
end
coroutine.close = function(...)
  if aborting() then raw_error("session aborted", 0) end
  local co = ...
  check_arg(raw_type(co) == "thread", "close", "thread", raw_select("#", ...), co)
  return close_tracked(co)
end

-- Finalizers run with hooks off (also when a cancelled VM is dropped), so the sandbox
-- refuses metatables that carry `__gc`.
setmetatable = function(...)
  local t, mt = ...
  local n = raw_select("#", ...)
  check_arg(raw_type(t) == "table", "setmetatable", "table", n, t)
  check_arg(mt == nil and n >= 2 or raw_type(mt) == "table", "setmetatable", "nil or table", n, mt, 2)
  if raw_type(mt) == "table" and raw_rawget(mt, "__gc") ~= nil then
    raw_error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  -- With both arguments checked, the only failure left is a protected metatable.
  local ok, r = raw_pcall(raw_setmetatable, t, mt)
  if not ok then raw_error("cannot change a protected metatable", 2) end
  return r
end

-- Text chunks only: crafted bytecode can corrupt memory.
load = function(...)
  local chunk, name = ...
  local n = raw_select("#", ...)
  local tc = raw_type(chunk)
  check_arg(tc == "string" or tc == "function", "load", "function", n, chunk)
  if n >= 4 then return raw_load(chunk, name, "t", (raw_select(4, ...))) end
  return raw_load(chunk, name, "t")
end

dofile, loadfile = nil, nil
string.dump = nil
debug = nil

-- Output: every line goes to the session log, never to the process stdout.
local function join_args(sep, ...)
  local n = raw_select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = raw_tostring((raw_select(i, ...))) end
  return concat(parts, sep)
end

print = function(...)
  local text = join_args("\t", ...):gsub("\n+$", "")
  host.log("info", "alc.lua.print", text)
end

warn = function(...)
  local text = join_args("", ...)
  if text:sub(1, 1) == "@" then return end
  host.log("warn", "alc.lua.warn", text)
end

local shim_files = {}
local function make_file(stream)
  local file = {}
  local methods = {}
  function methods.write(self, ...)
    for i = 1, raw_select("#", ...) do
      local v = raw_select(i, ...)
      local tv = raw_type(v)
      if tv ~= "string" and tv ~= "number" then
        raw_error("bad argument #" .. i .. " to 'write' (string expected, got " .. tv .. ")", 2)
      end
      host.io_write(stream, v)
    end
    return self
  end
  function methods.flush(self) return self end
  function methods.setvbuf() return true end
  function methods.close() return nil, "cannot close standard file" end
  function methods.lines() raw_error("bad file descriptor", 2) end
  function methods.read() return nil, "bad file descriptor", 9 end
  function methods.seek() return nil, "Illegal seek", 29 end
  raw_setmetatable(file, {
    __index = methods,
    __name = "FILE*",
    __tostring = function() return "file (" .. stream .. ")" end,
  })
  shim_files[file] = true
  return file
end

local stdout, stderr = make_file("stdout"), make_file("stderr")
io.stdout, io.stderr, io.stdin = stdout, stderr, nil
io.write = function(...) return stdout:write(...) end

-- Read-only handles over package data files (lua-api.md §1.3): the host reads the whole
-- file (size-capped, journaled by digest) and the handle serves reads from that string.
-- A handle's state lives here, out of the script's reach.
local data_files = raw_setmetatable({}, { __mode = "k" })
local raw_tonumber = tonumber
local str_find, str_sub, str_match = string.find, string.sub, string.match
local unpack = table.unpack

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

io.type = function(obj)
  if shim_files[obj] then return "file" end
  local st = data_files[obj]
  if st ~= nil then return st.closed and "closed file" or "file" end
  return raw_iotype(obj)
end
io.open = function(...)
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
io.read, io.lines, io.input, io.output, io.close, io.popen, io.tmpfile = nil, nil, nil, nil, nil, nil, nil

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

os.time = function(t)
  if t == nil then return host.clock("os_time") end
  if raw_type(t) ~= "table" then
    raw_error("bad argument #1 to 'time' (table expected, got " .. raw_type(t) .. ")", 2)
  end
  local days = days_from_civil(date_field(t, "year"), date_field(t, "month"), date_field(t, "day"))
  return days * 86400 + date_field(t, "hour", 12) * 3600 + date_field(t, "min", 0) * 60
    + date_field(t, "sec", 0)
end

os.date = function(fmt, t)
  fmt = fmt or "%c"
  if raw_type(fmt) == "string" and fmt:sub(1, 1) ~= "!" then fmt = "!" .. fmt end
  if t == nil then t = host.clock("os_date") end
  return raw_date(fmt, t)
end

os.clock = function() return host.clock("os_clock") end
os.getenv = function(name) return host.getenv(name) end
os.execute, os.remove, os.rename, os.exit, os.tmpname, os.setlocale = nil, nil, nil, nil, nil, nil

-- Randomness: seeded per session; an argument-less reseed takes the next value of the
-- session's derived seed stream.
math.randomseed = function(...)
  if raw_select("#", ...) == 0 then return raw_randomseed(host.next_seed()) end
  return raw_randomseed(...)
end

-- Module loading: only through the engine's resolver (lua-api.md §1.8).
package.path, package.cpath = "", ""
package.searchpath, package.loadlib = nil, nil
package.loaded.debug = nil

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
package.searchers = { preload_searcher, engine_searcher }

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

require = function(name)
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

-- The error handler of the root coroutine: message and traceback, kept apart.
local function describe(e)
  local te = raw_type(e)
  if te == "string" then return e end
  if te == "number" then return raw_tostring(e) end
  local mt = raw_getmetatable(e)
  if raw_type(mt) == "table" and raw_rawget(mt, "__tostring") ~= nil then
    local ok, s = raw_pcall(raw_tostring, e)
    if ok and raw_type(s) == "string" then return s end
  end
  return "error object: " .. te
end

local FAILURE = {}
local function on_error(e)
  if aborting() then return e end
  return { [FAILURE] = true, message = describe(e), traceback = host.traceback() }
end

local function settle_root(ok, ...)
  if ok then return true, ... end
  local info = ...
  if raw_type(info) == "table" and info[FAILURE] then
    return false, info.message, info.traceback
  end
  -- The handler did not run: a memory error, or an error inside the handler.
  return false, info, nil, true
end

--- The body of the session's root coroutine.
function P.entry(main, ...)
  MAIN = raw_running()
  return settle_root(raw_xpcall(main, on_error, ...))
end

--- The main function of a package run: `require(name)[entry](ctx)`.
function P.package_main(name, entry)
  return function(ctx)
    local m = require(name)
    local f = raw_type(m) == "table" and m[entry] or nil
    if raw_type(f) ~= "function" then
      raw_error("package '" .. name .. "' has no function '" .. entry .. "'", 0)
    end
    return f(ctx)
  end
end

--- Issues a host request prepared by a Layer-0 validator and returns the reply.
function P.host_yield(token)
  return raw_yield(HOST, token)
end

--- Trusted mode (`[sandbox] trusted = true`): restores the stock file, process and
--- environment functions. Binary chunks, `debug`, `os.exit`, `os.setlocale`, stdout
--- writes, time and randomness stay sandboxed.
function P.enable_trusted()
  local raw_loadfile = stock.loadfile
  local raw_output, raw_close = stock.io_output, stock.io_close
  local out = nil -- a default output file set through io.output, else the shim stdout
  io.open, io.read, io.lines, io.input = stock.io_open, stock.io_read, stock.io_lines, stock.io_input
  io.popen, io.tmpfile, io.stdin = stock.io_popen, stock.io_tmpfile, stock.io_stdin
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
  io.close = function(file)
    if file == nil then
      if out == nil then return stdout:close() end
      file = out
    end
    if shim_files[file] then return file:close() end
    return raw_close(file)
  end
  os.execute, os.remove, os.rename = stock.os_execute, stock.os_remove, stock.os_rename
  os.tmpname, os.getenv = stock.os_tmpname, stock.os_getenv
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
  package.searchpath = stock.searchpath
end

P.pack = pack
return P
