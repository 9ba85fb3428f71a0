--[[ A stand-in for DaVinci Resolve's scripting API in Lua (Resolve cannot run here), as
tests/fake_resolve.py is for Python: only the documented calls plugin/resolve_launcher.lua makes,
with their documented return types (tables for lists, nil or false for a refusal), each recorded.

    luajit tests/fake_resolve.lua CONFIG OUT LAUNCHER
      CONFIG: lines "key<TAB>value" (rate, start_frame, drop, name, export_from, timecode, marker,
              refuse, audio_tracks); OUT: the recorded calls and the timeline's state after, as JSON;
      LAUNCHER: the installed launcher (.lua) to run inside the stand-in, as Resolve would.
]]

local config_path, out_path, launcher_path = arg[1], arg[2], arg[3]
local cfg = {markers = {}, refuse = {}}
for line in io.lines(config_path) do
  local k, v = line:match("^([%w_]+)\t(.*)$")
  if k == "marker" then cfg.markers[#cfg.markers + 1] = tonumber(v)
  elseif k == "refuse" then cfg.refuse[v] = true
  elseif k then cfg[k] = v end
end

local calls = {}
local function log(...) calls[#calls + 1] = {...} end

local function basename(p) return (p:gsub("\\", "/"):match("([^/]+)$")) end

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

local MediaPoolItem = {}
MediaPoolItem.__index = MediaPoolItem
function MediaPoolItem:GetClipProperty(key) if key == "File Path" then return self.path end return "" end
function MediaPoolItem:GetName() return basename(self.path) end

local TimelineItem = {}
TimelineItem.__index = TimelineItem
function TimelineItem:GetStart() return self.start end
function TimelineItem:GetEnd() return self.start + self.duration end
function TimelineItem:GetDuration() return self.duration end
function TimelineItem:GetMediaPoolItem() return self.item end
-- markers as Resolve keeps them, one a frame (frame -> {color, name, note, duration, customData})
function TimelineItem:AddMarker(frame, color, name, note, duration, data)
  self.markers = self.markers or {}
  if self.markers[frame] or frame < 0 or frame >= self.duration then return false end
  self.markers[frame] = {color = color, name = name, note = note, duration = duration, customData = data}
  return true
end
function TimelineItem:GetMarkers() return self.markers or {} end
function TimelineItem:DeleteMarkerByCustomData(data)
  local gone = false
  for f, m in pairs(self.markers or {}) do
    if m.customData == data then self.markers[f] = nil; gone = true end
  end
  return gone
end

local Folder = {}
Folder.__index = Folder
local function folder(name) return setmetatable({name = name, subfolders = {}, clips = {}}, Folder) end
function Folder:GetName() return self.name end
function Folder:GetSubFolderList() return {unpack(self.subfolders)} end
function Folder:GetClipList() return {unpack(self.clips)} end

local tracks = {audio = {}, video = {}}
for n = 1, tonumber(cfg.audio_tracks or 1) do tracks.audio[n] = {name = "Audio " .. n, items = {}} end

local MediaPool = {}
MediaPool.__index = MediaPool
local pool = setmetatable({root = folder("Master")}, MediaPool)
pool.current = pool.root
function MediaPool:GetRootFolder() return self.root end
function MediaPool:AddSubFolder(parent, name)
  log("AddSubFolder", parent:GetName(), name)
  if cfg.refuse.AddSubFolder then return nil end
  local f = folder(name)
  parent.subfolders[#parent.subfolders + 1] = f
  return f
end
function MediaPool:SetCurrentFolder(f)
  log("SetCurrentFolder", f:GetName())
  self.current = f
  return true
end
function MediaPool:ImportMedia(paths)
  local names = {}
  for i, p in ipairs(paths) do names[i] = p end
  log("ImportMedia", self.current:GetName(), names)
  local items = {}
  for _, p in ipairs(paths) do
    if exists(p) then
      local it = setmetatable({path = p}, MediaPoolItem)
      items[#items + 1] = it
      self.current.clips[#self.current.clips + 1] = it
    end
  end
  return items
end
function MediaPool:AppendToTimeline(infos)
  local shown = {}
  for i, info in ipairs(infos) do
    local keys = 0
    for _ in pairs(info) do keys = keys + 1 end
    assert(keys == 6, "a clipInfo has exactly mediaPoolItem, startFrame, endFrame, mediaType, trackIndex, recordFrame")
    shown[i] = {mediaPoolItem = info.mediaPoolItem:GetName(), startFrame = info.startFrame, endFrame = info.endFrame,
                mediaType = info.mediaType, trackIndex = info.trackIndex, recordFrame = info.recordFrame}
  end
  log("AppendToTimeline", shown)
  if cfg.refuse.AppendToTimeline then return {} end
  local placed = {}
  for _, info in ipairs(infos) do
    local t = setmetatable({item = info.mediaPoolItem, start = info.recordFrame,
                            duration = info.endFrame - info.startFrame + 1}, TimelineItem)
    local items = tracks.audio[info.trackIndex].items
    items[#items + 1] = t
    placed[#placed + 1] = t
  end
  return placed
end

local Timeline = {}
Timeline.__index = Timeline
local timeline = setmetatable({}, Timeline)
function Timeline:GetName() return cfg.name or "Timeline 1" end
function Timeline:GetSetting(key)
  if key == "timelineFrameRate" then return cfg.rate end
  if key == "timelineDropFrameTimecode" then return cfg.drop or "0" end
  return ""
end
function Timeline:GetStartFrame() return tonumber(cfg.start_frame) end
function Timeline:GetMarkers()
  local m = {}
  for _, f in ipairs(cfg.markers) do m[f] = {color = "Blue", name = "hit", note = "", duration = 1, customData = ""} end
  return m
end
function Timeline:Export(path, kind, subtype)
  log("Export", path:match("(%.%w+)$"), kind, subtype)
  if cfg.refuse.Export or kind ~= "EXPORT_OTIO" or not cfg.export_from then return false end
  local src = assert(io.open(cfg.export_from, "rb"))
  local dst = assert(io.open(path, "wb"))
  dst:write(src:read("*a"))
  src:close() dst:close()
  return true
end
function Timeline:AddTrack(kind, sub)
  log("AddTrack", kind, sub)
  if cfg.refuse.AddTrack then return false end
  tracks[kind][#tracks[kind] + 1] = {name = "Audio " .. (#tracks[kind] + 1), items = {}}
  return true
end
function Timeline:GetTrackCount(kind) return #tracks[kind] end
function Timeline:GetTrackName(kind, n) return tracks[kind][n].name end
function Timeline:SetTrackName(kind, n, name)
  log("SetTrackName", kind, n, name)
  tracks[kind][n].name = name
  return true
end
function Timeline:GetItemListInTrack(kind, n) return {unpack(tracks[kind][n].items)} end
function Timeline:DeleteClips(items)
  local shown = {}
  for i, it in ipairs(items) do shown[i] = {it:GetStart(), it:GetMediaPoolItem():GetName()} end
  log("DeleteClips", shown)
  for _, t in ipairs(tracks.audio) do
    local keep = {}
    for _, it in ipairs(t.items) do
      local gone = false
      for _, d in ipairs(items) do if d == it then gone = true end end
      if not gone then keep[#keep + 1] = it end
    end
    t.items = keep
  end
  return true
end
function Timeline:GetCurrentTimecode() return cfg.timecode or "01:00:00:00" end

local project = {}
function project:GetCurrentTimeline() return timeline end
function project:GetMediaPool() return pool end
local resolve = {EXPORT_OTIO = "EXPORT_OTIO", EXPORT_NONE = "EXPORT_NONE"}
function resolve:GetProjectManager()
  return {GetCurrentProject = function() if cfg.no_project then return nil end return project end}
end

-- Resolve gives a script the Resolve() function (and, for Python, the `resolve` global)
if not cfg.no_api then Resolve = function() return resolve end end

-- what Resolve's Console shows
local console = {}
local real_print = print
print = function(...)  -- luacheck: ignore
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring(select(i, ...)) end
  console[#console + 1] = table.concat(parts, "\t")
end
local code = dofile(launcher_path)
print = real_print  -- luacheck: ignore

-- a small JSON writer for the record
local function json(v)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = json(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = json(tostring(k)) .. ":" .. json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t == "nil" then
    return "null"
  end
  return tostring(v)
end

local state = {}
for n, tr in ipairs(tracks.audio) do
  local items = {}
  local marks = {}
  for i, it in ipairs(tr.items) do
    items[i] = {it.start, it.duration, it.item:GetName()}
    local frames = {}
    for f in pairs(it.markers or {}) do frames[#frames + 1] = f end
    table.sort(frames)
    for _, f in ipairs(frames) do
      local m = it.markers[f]
      marks[#marks + 1] = {i, f, m.color, m.name, m.customData}
    end
  end
  state[n] = {name = tr.name, items = items, markers = marks}
end
local bins = {}
for _, f in ipairs(pool.root.subfolders) do
  local names = {}
  for i, c in ipairs(f.clips) do names[i] = c:GetName() end
  bins[f.name] = names
end
local out = assert(io.open(out_path, "w"))
out:write(json({code = code, calls = calls, console = console, audio = state, bins = bins}))
out:close()
