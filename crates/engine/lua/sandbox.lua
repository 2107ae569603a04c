-- The session sandbox: shims over the stock library and the host-yield protocol.
--
-- This chunk runs once per VM, before any user code, with the stock globals still in
-- place. It captures the raw functions it needs as locals (upvalues nothing else can
-- reach: the `debug` library is never opened), replaces or removes globals, and returns
-- the entry function the engine turns into the session's root coroutine.
--
-- Only what every session needs is built here. The shims most sessions never call
-- (coroutine resume/wrap/close, `load`, output, files, dates, `require`, trusted mode)
-- live in `sandbox_more.lua`, loaded on their first use through small forwarding
-- functions, so a paused session does not carry them (engine.md §5.7).
--
-- Yield kinds (engine.md §4.4, §13 note 2): a host request yields `(HOST, token)`, a
-- user `coroutine.yield` yields `(USER, ...)`, a hook preemption yields nothing at all.
local P = ...

local HOST, USER = P.HOST, P.USER
local host = P.host

local raw_yield = coroutine.yield
local raw_running = coroutine.running
local raw_isyieldable = coroutine.isyieldable
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
-- Stock functions of the base and package libraries trusted mode restores (the other
-- libraries can be opened afresh).
local raw_loadfile, raw_searchpath = loadfile, package.searchpath
local tointeger = math.tointeger

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

-- Stock argument errors for the shims, so no engine-internal name or position leaks.
local function check_arg(ok, fname, expected, n, v, argn)
  if ok then return end
  argn = argn or 1
  local got = n < argn and "no value" or raw_type(v)
  raw_error("bad argument #" .. argn .. " to '" .. fname .. "' (" .. expected .. " expected, got "
    .. got .. ")", 3)
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

dofile, loadfile = nil, nil
string.dump = nil
debug = nil

local more -- the loader of the rest, below

-- A forwarder to `more()[name]`, called in tail position so error levels and tracebacks
-- see the script's frames, not the forwarder's. All forwarders share one prototype.
local function forward(name)
  return function(...) return more()[name](...) end
end

load = forward("load")
print = forward("print")
warn = forward("warn")

-- The standard files: the handles exist from the start, their methods come with the rest.
local shim_files = {}
local file_mt = {
  __index = forward("file_method"),
  __name = "FILE*",
  __tostring = function(f) return "file (" .. shim_files[f] .. ")" end,
}
local stdout = raw_setmetatable({}, file_mt)
local stderr = raw_setmetatable({}, file_mt)
shim_files[stdout], shim_files[stderr] = "stdout", "stderr"

-- The stock `io` library is not opened: its file functions are not available here, and
-- the sandbox's `io` holds only these.
io = {
  stdout = stdout, stderr = stderr, write = forward("io_write"), type = forward("io_type"),
  open = forward("io_open"), flush = forward("io_flush"),
}
package.loaded.io = io

os.time = forward("os_time")
os.date = forward("os_date")
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

-- The rest of the sandbox (`sandbox_more.lua`), loaded on first use. `K` is what it shares
-- with this chunk, in the order it unpacks them (an array: no key strings to keep alive in
-- every VM).
local K = {
  P, HOST, USER, host, raw_loadfile, raw_searchpath, raw_yield, raw_running, raw_pcall,
  raw_error, raw_load, raw_setmetatable, raw_tostring, raw_type, raw_select, raw_rawget,
  tointeger, aborting, enter, block, can_host_yield, UNBLOCK, RESTORE, check_arg, stdout,
  shim_files,
}
local MORE = nil
function more()
  local m = MORE
  if m == nil then
    m = host.sandbox_more()(K)
    MORE = m
  end
  return m
end

coroutine.resume = forward("resume")
coroutine.wrap = forward("wrap")
coroutine.yield = function(...)
  if raw_running() == MAIN then
    raw_error("attempt to yield from outside a coroutine", 0)
  end
  return raw_yield(USER, ...)
end
coroutine.close = forward("close")

package.searchers = {
  forward("preload_searcher"),
  forward("engine_searcher"),
}
require = forward("require")

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
P.package_main = forward("package_main")

--- Issues a host request prepared by a Layer-0 validator and returns the reply.
function P.host_yield(token)
  return raw_yield(HOST, token)
end

--- Trusted mode (`[sandbox] trusted = true`): see `sandbox_more.lua`.
P.enable_trusted = forward("enable_trusted")

return P
