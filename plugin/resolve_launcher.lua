--[[ cutscore for DaVinci Resolve, in Lua: what the Workspace > Scripts > Edit menu of Resolve 21.1's
free edition lists (it lists Lua scripts only; Studio lists Python ones too, plugin/resolve.py).
`cutscore resolve install` writes two small launchers that load this file:

    local launcher = dofile(CUTSCORE_ROOT .. "/plugin/resolve_launcher.lua")
    launcher.launch("score", CUTSCORE_ROOT, CUTSCORE_PYTHON)       -- or "regenerate"

It does what the Python launchers do, with the same documented API calls (Resolve's
Developer/Scripting/README.txt; Lua spells them with a colon): the Resolve calls here, everything
else in cutscore's own Python through `cutscore resolve run` (io.popen), whose lines
"cutscore-clip\tWAV\tSTART\tEND\tRECORD" and "cutscore-take\tWAV" say what to place where, and whose
last line is "cutscore-done" when it succeeded.

    score:      timeline:Export(otio, resolve.EXPORT_OTIO, resolve.EXPORT_NONE), timeline:GetMarkers()
                -> `cutscore resolve run score` (the panel, or --no-panel) -> pool:AddSubFolder,
                pool:SetCurrentFolder, pool:ImportMedia, timeline:AddTrack("audio", "stereo"),
                timeline:SetTrackName, pool:AppendToTimeline({clipInfo, ...})
    regenerate: the music item under timeline:GetCurrentTimecode() on the "cutscore music" track
                -> `cutscore resolve run regenerate WAV` -> pool:ImportMedia, timeline:DeleteClips,
                pool:AppendToTimeline (same track, same record frame)

Where Resolve refuses a call (nil or false), the launcher prints one line that names the file route:
File > Export > Timeline as .otio, `cutscore score cut.otio -o cut-scored.otio`, File > Import > Timeline.
]]

local M = {}

-- the track and bin names are plugin/names.py's, passed by the installed launcher (opts.names)
local TRACK_NAME, BIN_NAME
local BEAT_DATA = "cutscore-beat"  -- the beat markers' customData (plugin/names.py RESOLVE_MARKER)
local FILE_ROUTE = "the file route always works: File > Export > Timeline as .otio, "
  .. "`cutscore score cut.otio -o cut-scored.otio`, File > Import > Timeline"
M.NO_API = "cutscore: DaVinci Resolve's scripting API is not reachable; run this from Workspace > Scripts > Edit "
  .. "inside Resolve; " .. FILE_ROUTE .. "."

local function fail(message)
  error({cutscore = message}, 0)
end

local function refused(call)
  fail("cutscore: Resolve refused " .. call .. "; " .. FILE_ROUTE .. ".")
end

M.windows = package.config:sub(1, 1) == "\\"

-- One argument for the shell io.popen runs (sh on Linux and macOS, cmd.exe on Windows).
function M.quote(arg)
  arg = tostring(arg)
  if M.windows then
    return '"' .. arg:gsub('"', '\\"') .. '"'
  end
  return "'" .. arg:gsub("'", "'\\''") .. "'"
end

-- Run `python -m ui.cli resolve run ...` in cutscore's folder; print its lines to the Console;
-- return its protocol lines as tables of fields. A run without "cutscore-done" fails with its last line.
function M.run(root, python, args, log)
  local parts = {M.quote(python), "-m", "ui.cli", "resolve", "run"}
  for _, a in ipairs(args) do parts[#parts + 1] = M.quote(a) end
  local cmd = (M.windows and "cd /d " or "cd ") .. M.quote(root) .. " && " .. table.concat(parts, " ") .. " 2>&1"
  if M.windows then cmd = '"' .. cmd .. '"' end
  local pipe = io.popen(cmd, "r")
  if not pipe then fail("cutscore: could not start " .. python .. "; run `cutscore resolve install` again") end
  local records, last, done = {}, "no output", false
  for line in pipe:lines() do
    local kind = line:match("^(cutscore%-%a+)\t") or line:match("^(cutscore%-done)$")
    if kind == "cutscore-done" then
      done = true
    elseif kind then
      local fields = {}
      for f in (line .. "\t"):gmatch("([^\t]*)\t") do fields[#fields + 1] = f end
      records[#records + 1] = fields
    else
      log(line)
      if line:match("%S") then last = line end
    end
  end
  pipe:close()
  if not done then  -- its last line is already on the Console: say nothing twice
    if last:match("^cutscore") then error({cutscore = last, shown = true}, 0) end
    fail("cutscore: " .. last)
  end
  return records
end

function M.connect(resolve_global)
  local r = resolve_global
  if r == nil and type(Resolve) == "function" then r = Resolve() end
  if r == nil and type(bmd) == "table" and bmd.scriptapp then r = bmd.scriptapp("Resolve") end
  if r == nil then fail(M.NO_API) end
  return r
end

function M.current(resolve)
  local pm = resolve:GetProjectManager()
  local project = pm and pm:GetCurrentProject()
  if not project then
    fail("cutscore: no project is open in Resolve; open one and its timeline, then run cutscore again")
  end
  local timeline = project:GetCurrentTimeline()
  if not timeline then
    fail("cutscore: the project has no current timeline; open the timeline to score in the Edit page")
  end
  return project, timeline
end

-- Frames of a Resolve timecode ("01:00:00:00", drop frame "01:00:00;00") at the timeline's rate.
function M.timecode_frames(tc, rate, drop)
  local h, m, s, sep, f = tc:match("^(%d+):(%d+):(%d+)([:;.,])(%d+)$")
  if not h then fail("cutscore: Resolve gave the playhead as " .. tostring(tc) .. ", not a timecode") end
  h, m, s, f = tonumber(h), tonumber(m), tonumber(s), tonumber(f)
  local nominal = math.floor(rate + 0.5)
  local frames = (h * 3600 + m * 60 + s) * nominal + f
  if drop or sep == ";" or sep == "," then  -- SMPTE drop frame: 2 (29.97) or 4 (59.94) numbers a minute
    local dropped = math.floor(nominal / 15 + 0.5)
    local minutes = h * 60 + m
    frames = frames - dropped * (minutes - math.floor(minutes / 10))
  end
  return frames
end

local function bin(pool)
  local root = pool:GetRootFolder()
  for _, f in ipairs(root:GetSubFolderList() or {}) do
    if f:GetName() == BIN_NAME then return f end
  end
  return pool:AddSubFolder(root, BIN_NAME) or refused("to create the 'cutscore' bin in the media pool")
end

local function norm(path)
  return (tostring(path):gsub("\\", "/"))
end

-- ImportMedia into the cutscore bin; {path: MediaPoolItem}.
local function import(pool, wavs)
  if not pool:SetCurrentFolder(bin(pool)) then refused("to open the 'cutscore' bin") end
  local items = pool:ImportMedia(wavs) or {}
  local by_path = {}
  for _, item in ipairs(items) do by_path[norm(item:GetClipProperty("File Path"))] = item end
  for _, w in ipairs(wavs) do
    if not by_path[norm(w)] then fail("cutscore: Resolve did not import " .. w .. "; check the file exists and is a WAV") end
  end
  return by_path
end

local function temp_dir()
  local base = os.getenv("TMPDIR") or os.getenv("TEMP") or os.getenv("TMP") or "/tmp"
  return base
end

function M.score(resolve, root, python, extra, log)
  local project, timeline = M.current(resolve)
  local name = (timeline:GetName() or "timeline"):gsub("[^%w.-]+", "_"):sub(1, 80)
  if name == "" then name = "timeline" end
  local stamp = tostring(os.time()) .. "-" .. tostring(math.random(100000, 999999))
  local src = temp_dir() .. (M.windows and "\\" or "/") .. "cutscore-resolve-" .. stamp .. "-" .. name .. ".otio"
  if not timeline:Export(src, resolve.EXPORT_OTIO, resolve.EXPORT_NONE) then
    fail("cutscore: Resolve did not export the timeline as OTIO (Timeline:Export); " .. FILE_ROUTE .. ".")
  end
  local markers = {}
  for frame, _ in pairs(timeline:GetMarkers() or {}) do markers[#markers + 1] = tonumber(frame) end
  table.sort(markers)
  local args = {"score", src, "--rate", tostring(timeline:GetSetting("timelineFrameRate") or 24),
                "--start-frame", tostring(timeline:GetStartFrame() or 0)}
  if #markers > 0 then
    local m = {}
    for i, f in ipairs(markers) do m[i] = tostring(f) end
    args[#args + 1] = "--markers"
    args[#args + 1] = table.concat(m, ",")
  end
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local clips, marks = {}, {}
  for _, r in ipairs(M.run(root, python, args, log)) do
    if r[1] == "cutscore-clip" then clips[#clips + 1] = r end
    if r[1] == "cutscore-marker" then marks[#marks + 1] = r end
  end
  if #clips == 0 then fail("cutscore: no music was written (the panel was closed before Generate?)") end
  local pool = project:GetMediaPool()
  local wavs = {}
  for i, c in ipairs(clips) do wavs[i] = c[2] end
  local items = import(pool, wavs)
  if not timeline:AddTrack("audio", "stereo") then refused("to add an audio track to the timeline (is it locked?)") end
  local track = timeline:GetTrackCount("audio")
  timeline:SetTrackName("audio", track, TRACK_NAME)
  local infos = {}
  for i, c in ipairs(clips) do
    infos[i] = {mediaPoolItem = items[norm(c[2])], startFrame = tonumber(c[3]), endFrame = tonumber(c[4]),
                mediaType = 2, trackIndex = track, recordFrame = tonumber(c[5])}
  end
  local placed = pool:AppendToTimeline(infos) or {}
  if #placed ~= #infos then
    refused("to place " .. (#infos - #placed) .. " of " .. #infos .. " music clips (AppendToTimeline)")
  end
  local by_wav = {}
  for i, c in ipairs(clips) do by_wav[norm(c[2])] = placed[i] end
  M.mark_beats(by_wav, marks)
  log("cutscore: " .. #placed .. " music clips on the '" .. TRACK_NAME .. "' track; the WAVs are in the '"
      .. BIN_NAME .. "' bin")
  return placed
end

-- cutscore's beat markers ("cutscore-marker\tWAV\tFRAME\tCOLOR\tNAME") on the items playing each WAV:
-- each item's earlier ones (customData "cutscore-beat") deleted first; the editor's own stay.
function M.mark_beats(by_wav, marks)
  local cleared = {}
  for _, m in ipairs(marks) do
    local item = by_wav[norm(m[2])]
    if item then
      if not cleared[item] then
        item:DeleteMarkerByCustomData(BEAT_DATA)
        cleared[item] = true
      end
      item:AddMarker(tonumber(m[3]), m[4], m[5], "", 1, BEAT_DATA)
    end
  end
end

function M.music_track(timeline)
  for n = 1, tonumber(timeline:GetTrackCount("audio") or 0) do
    if timeline:GetTrackName("audio", n) == TRACK_NAME then return n end
  end
  return nil
end

function M.regenerate(resolve, root, python, extra, log)
  local project, timeline = M.current(resolve)
  local track = M.music_track(timeline)
  if not track then
    fail("cutscore: this timeline has no '" .. TRACK_NAME .. "' track; run Workspace > Scripts > cutscore first")
  end
  local rate = tonumber(timeline:GetSetting("timelineFrameRate") or 24) or 24
  local drop = tostring(timeline:GetSetting("timelineDropFrameTimecode") or "0") == "1"
  local frame = M.timecode_frames(timeline:GetCurrentTimecode(), rate, drop)
  local item
  for _, it in ipairs(timeline:GetItemListInTrack("audio", track) or {}) do
    if it:GetStart() <= frame and frame < it:GetEnd() then item = it end
  end
  if not item then
    fail("cutscore: no music clip under the playhead on '" .. TRACK_NAME .. "'; move the playhead onto one")
  end
  local wav = item:GetMediaPoolItem():GetClipProperty("File Path")
  local args = {"regenerate", wav, "--rate", tostring(rate)}
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local new
  local marks = {}
  for _, r in ipairs(M.run(root, python, args, log)) do
    if r[1] == "cutscore-take" then new = r[2] end
    if r[1] == "cutscore-marker" then marks[#marks + 1] = r end
  end
  if not new then fail("cutscore: no new take was written") end
  local pool = project:GetMediaPool()
  local items = import(pool, {new})
  local record, duration = item:GetStart(), item:GetDuration()
  if not timeline:DeleteClips({item}) then refused("to remove the old take from the timeline (is the track locked?)") end
  local placed = pool:AppendToTimeline({{mediaPoolItem = items[norm(new)], startFrame = 0, endFrame = duration - 1,
                                         mediaType = 2, trackIndex = track, recordFrame = record}}) or {}
  if #placed ~= 1 then refused("to place the new take (it is in the 'cutscore' bin)") end
  M.mark_beats({[norm(new)] = placed[1]}, marks)
  log("cutscore: the new take " .. new .. " is on '" .. TRACK_NAME .. "' at the old take's place")
  return placed[1]
end

-- The launchers' entry point: one line to the Console on failure, and 2; 0 when done.
-- CUTSCORE_RESOLVE_ARGS (environment, space-separated) adds arguments for `cutscore resolve run`:
-- "--no-panel" scores without the panel; "--extra=--model --extra=DIR" passes options to score.
function M.launch(action, root, python, opts)
  opts = opts or {}
  local log = opts.log or print
  if not (opts.names and opts.names.track and opts.names.bin) then
    log("cutscore: this launcher was written by an older cutscore; run `cutscore resolve install` again")
    return 2
  end
  TRACK_NAME, BIN_NAME = opts.names.track, opts.names.bin
  BEAT_DATA = opts.names.beat or BEAT_DATA
  if not opts.extra then
    opts.extra = {}
    for a in (os.getenv("CUTSCORE_RESOLVE_ARGS") or ""):gmatch("%S+") do opts.extra[#opts.extra + 1] = a end
  end
  local ok, err = pcall(function()
    local resolve = M.connect(opts.resolve or rawget(_G, "resolve"))
    if action == "score" then
      return M.score(resolve, root, python, opts.extra, log)
    elseif action == "regenerate" then
      return M.regenerate(resolve, root, python, opts.extra, log)
    end
    fail("cutscore: unknown launcher action " .. tostring(action))
  end)
  if ok then return 0 end
  if not (type(err) == "table" and err.shown) then
    log(type(err) == "table" and err.cutscore or ("cutscore: " .. tostring(err)))
  end
  return 2
end

return M
