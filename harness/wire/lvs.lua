-- Wireshark dissector for LVS, the Live Video Stream protocol (reference/PROTOCOL.md).
--
--   tshark -X lua_script:harness/wire/lvs.lua -r wire.pcapng -Y 'lvs.epoch == 2'
--   wireshark -X lua_script:harness/wire/lvs.lua wire.pcapng
--
-- (or copy it into Wireshark's personal Lua plugins folder). LVS is found on
-- any TCP port by its first bytes (a heuristic: magic "LV", a known type,
-- legal flags), and on the port in the preferences (7450). Frames that span
-- TCP segments are reassembled, and a segment holding several frames shows
-- them all. Fields, named as in the harness trace (docs/wireshark.md):
--
--   lvs.magic  lvs.type  lvs.flags  lvs.key  lvs.flags.reserved  lvs.epoch
--   lvs.seq (header `sequence`)  lvs.ts (`timestamp`, µs)  lvs.len (`length`)
--   lvs.payload  lvs.msg (CONTROL text)  lvs.name (its message name)
--   lvs.field (each field of the message)  lvs.msg.epoch (its `epoch=` value)
--
-- The tables below repeat PROTOCOL.md sections 2.1-2.7; tests/wire/
-- test_wireshark.py checks them against reference/protocol/frames.py.

local HEADER_SIZE = 24
local MAGIC = "LV"
local DEFAULT_PORT = 7450
local MAX_CONTROL_PAYLOAD = 4096
local DEFAULT_MAX_MEDIA_PAYLOAD = 4 * 1024 * 1024
local KEYFRAME = 0x01
local VIDEO = 3

local FRAME_TYPES = { [1] = "CONTROL", [2] = "CSD", [3] = "VIDEO", [4] = "AUDIO" }
local CONTROL = 1

local lvs = Proto("lvs", "LVS (Live Video Stream)")

local f = lvs.fields
f.magic = ProtoField.string("lvs.magic", "magic")
f.type = ProtoField.uint8("lvs.type", "type", base.DEC, FRAME_TYPES)
f.flags = ProtoField.uint8("lvs.flags", "flags", base.HEX)
f.key = ProtoField.bool("lvs.key", "KEYFRAME", 8, nil, KEYFRAME)
f.reserved = ProtoField.uint8("lvs.flags.reserved", "reserved", base.HEX, nil, 0xFE)
f.epoch = ProtoField.uint32("lvs.epoch", "epoch", base.DEC)
f.seq = ProtoField.uint32("lvs.seq", "sequence", base.DEC)
f.ts = ProtoField.uint64("lvs.ts", "timestamp (us)", base.DEC)
f.len = ProtoField.uint32("lvs.len", "length", base.DEC)
f.payload = ProtoField.bytes("lvs.payload", "payload")
f.msg = ProtoField.string("lvs.msg", "control message")
f.name = ProtoField.string("lvs.name", "message name")
f.field = ProtoField.string("lvs.field", "field")
f.msg_epoch = ProtoField.uint32("lvs.msg.epoch", "message epoch", base.DEC)

local bad_magic = ProtoExpert.new("lvs.bad_magic", "Not an LVS header: framing is lost (bad_magic)",
    expert.group.MALFORMED, expert.severity.ERROR)
local bad_type = ProtoExpert.new("lvs.bad_frame_type", "Unknown frame type (bad_frame_type)",
    expert.group.MALFORMED, expert.severity.ERROR)
local bad_flags = ProtoExpert.new("lvs.bad_flags", "Flags not allowed on this frame (bad_flags)",
    expert.group.MALFORMED, expert.severity.ERROR)
local oversize = ProtoExpert.new("lvs.oversize", "Length over the limit (oversize)",
    expert.group.MALFORMED, expert.severity.ERROR)
local keyframe = ProtoExpert.new("lvs.keyframe", "Keyframe", expert.group.SEQUENCE,
    expert.severity.CHAT)
lvs.experts = { bad_magic, bad_type, bad_flags, oversize, keyframe }

lvs.prefs.port = Pref.uint("TCP port", DEFAULT_PORT, "Port dissected as LVS without the heuristic")
lvs.prefs.max_media = Pref.uint("Largest media payload", DEFAULT_MAX_MEDIA_PAYLOAD,
    "Media length limit of the peers (PROTOCOL.md 2.7); longer is oversize")

-- Why a header cannot start a frame, or nil: PROTOCOL.md 2.8, steps 1 to 4.
local function header_problem(tvb, offset)
    if tvb(offset, 2):string() ~= MAGIC then
        return bad_magic
    end
    local frame_type = tvb(offset + 2, 1):uint()
    if FRAME_TYPES[frame_type] == nil then
        return bad_type
    end
    local flags = tvb(offset + 3, 1):uint()
    if flags ~= 0 and (flags ~= KEYFRAME or frame_type ~= VIDEO) then
        return bad_flags
    end
    local limit = frame_type == CONTROL and MAX_CONTROL_PAYLOAD or lvs.prefs.max_media
    if tvb(offset + 20, 4):uint() > limit then
        return oversize
    end
    return nil
end

-- A frame's length; after a bad header everything left, as a receiver gives up there.
local function frame_length(tvb, pinfo, offset)
    if header_problem(tvb, offset) ~= nil then
        return tvb:len() - offset
    end
    return HEADER_SIZE + tvb(offset + 20, 4):uint()
end

local function add_control(tree, payload)
    local text = payload:raw()  -- the bytes as sent, even when not UTF-8 (bad_utf8)
    tree:add(f.msg, payload, text)
    local function span(start, length)
        return payload(start, math.max(length, 1))
    end
    local name = text:match("^[^|]*")
    tree:add(f.name, span(0, #name), name)
    local position = #name
    for field in text:sub(#name + 1):gmatch("|([^|]*)") do
        position = position + 1
        local range = #field > 0 and span(position, #field) or span(position - 1, 1)
        tree:add(f.field, range, field)
        local epoch = field:match("^epoch=(%d+)$")
        if epoch ~= nil then
            tree:add(f.msg_epoch, range, tonumber(epoch))
        end
        position = position + #field
    end
    return text
end

local function describe(tvb)
    local frame_type = tvb(2, 1):uint()
    local name = FRAME_TYPES[frame_type] or string.format("type %d", frame_type)
    if frame_type == CONTROL and tvb:len() > HEADER_SIZE then
        return name .. " " .. tvb(HEADER_SIZE):raw()
    end
    local key = tvb(3, 1):uint() == KEYFRAME and frame_type == VIDEO and " key" or ""
    return string.format("%s%s epoch=%d seq=%d len=%d", name, key, tvb(4, 4):uint(),
        tvb(8, 4):uint(), tvb(20, 4):uint())
end

local function dissect_frame(tvb, pinfo, tree)
    local problem = header_problem(tvb, 0)
    local item = tree:add(lvs, tvb())
    item:add(f.magic, tvb(0, 2))
    if problem == bad_magic then
        item:add_proto_expert_info(bad_magic)
        item:add(f.payload, tvb())
        pinfo.cols.protocol = "LVS"
        pinfo.cols.info:append(" [framing lost]")
        return tvb:len()
    end
    item:add(f.type, tvb(2, 1))
    local flags = item:add(f.flags, tvb(3, 1))
    flags:add(f.key, tvb(3, 1))
    flags:add(f.reserved, tvb(3, 1))
    item:add(f.epoch, tvb(4, 4))
    item:add(f.seq, tvb(8, 4))
    item:add(f.ts, tvb(12, 8))
    item:add(f.len, tvb(20, 4))
    local summary = describe(tvb)
    item:append_text(": " .. summary)
    if problem ~= nil then
        item:add_proto_expert_info(problem)
    elseif tvb(3, 1):uint() == KEYFRAME then
        item:add_proto_expert_info(keyframe)
    end
    if tvb:len() > HEADER_SIZE then
        local payload = tvb(HEADER_SIZE)
        if tvb(2, 1):uint() == CONTROL and problem == nil then
            add_control(item, payload)
        else
            item:add(f.payload, payload)
        end
    end
    -- The first frame of a packet replaces TCP's summary; later ones are added to it.
    if tostring(pinfo.cols.protocol) ~= "LVS" then
        pinfo.cols.protocol = "LVS"
        pinfo.cols.info = summary
    else
        pinfo.cols.info:append(", " .. summary)
    end
    return tvb:len()
end

local function dissect_stream(tvb, pinfo, tree)
    dissect_tcp_pdus(tvb, tree, HEADER_SIZE, frame_length, dissect_frame, true)
    return tvb:len()
end

lvs.dissector = dissect_stream

-- The first bytes of a connection's first data segment decide; the conversation
-- is then LVS for good, so segments that continue a frame are dissected too.
-- A fault injector may deliver the first header in pieces: judge the bytes there are.
local function heuristic(tvb, pinfo, tree)
    if tvb:len() < 2 or tvb(0, 2):string() ~= MAGIC then
        return false
    end
    local frame_type = tvb:len() >= 3 and tvb(2, 1):uint() or CONTROL
    local flags = tvb:len() >= 4 and tvb(3, 1):uint() or 0
    if FRAME_TYPES[frame_type] == nil or (flags ~= 0 and (flags ~= KEYFRAME or frame_type ~= VIDEO)) then
        return false
    end
    pinfo.conversation = lvs
    -- Called directly: through the `lvs.dissector` handle it could not ask TCP for more.
    dissect_stream(tvb, pinfo, tree)
    return true
end

local registered_port = 0

local function register_port()
    local tcp_port = DissectorTable.get("tcp.port")
    if registered_port ~= 0 then
        tcp_port:remove(registered_port, lvs)
    end
    registered_port = lvs.prefs.port
    if registered_port ~= 0 then
        tcp_port:add(registered_port, lvs)
    end
end

lvs.prefs_changed = register_port
register_port()
lvs:register_heuristic("tcp", heuristic)
