-- Strict input at the gateway, in front of Envoy's grpc_json_transcoder.
--
-- The transcoder parses JSON leniently (single quotes, trailing commas, duplicate keys)
-- and cannot refuse unknown body fields. This filter refuses, for HTTP/JSON callers of a
-- known route, with HTTP 400/413/414 and the gRPC-status JSON shape:
--   * a URL over LIMITS.max_url_bytes (URI_TOO_LONG) and a body over
--     LIMITS.max_body_bytes (BODY_TOO_LARGE; a Content-Length over it is refused before
--     the body is read);
--   * a header name a gRPC service cannot take (INVALID_HEADER_NAME; also for gRPC
--     callers, answered with grpc-status 3);
--   * an unknown or repeated query parameter (UNKNOWN_FIELD, DUPLICATE_FIELD);
--   * a body that is not RFC 8259 JSON (MALFORMED_JSON), a duplicate key
--     (DUPLICATE_FIELD), an unknown field (UNKNOWN_FIELD), a path field in the body
--     (PATH_FIELD_IN_BODY), a value of the wrong JSON type (WRONG_JSON_TYPE).
-- Everything else passes unchanged: gRPC callers, unknown paths and methods (the routes
-- answer 404/405), and valid requests (the transcoder and the service check values).
--
-- ptctl/strict_json.py renders ROUTES, MESSAGES, LIMITS and ERRORS above this file
-- from the descriptor set; see docs/gateway.md and docs/adr/0008-strict-json-gateway.md.

local MAX_DEPTH = LIMITS.max_depth

-- JSON encoding of the error replies -------------------------------------------------

local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, min
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then
      len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then
      len, min = 4, 0x10000
    else
      return false
    end
    if len > 1 then
      if i + len - 1 > n then
        return false
      end
      local cp = c % (2 ^ (7 - len))
      for k = 1, len - 1 do
        local cc = s:byte(i + k)
        if cc < 0x80 or cc > 0xBF then
          return false
        end
        cp = cp * 64 + (cc - 0x80)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
        return false
      end
    end
    i = i + len
  end
  return true
end

local function quote(s)
  if not valid_utf8(s) then
    s = s:gsub("[\128-\255]", function(c)
      return string.format("\\x%02X", c:byte())
    end)
  end
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode_map(map)
  local keys = {}
  for k in pairs(map) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = quote(k) .. ":" .. quote(tostring(map[k]))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- A refusal: reason (a key of ERRORS), the field it names ("" for the whole request),
-- a human message, and ErrorInfo metadata.
local function refusal(reason, field, message, metadata)
  return { reason = reason, field = field, message = message, metadata = metadata or {} }
end

local function respond(handle, r)
  local spec = ERRORS[r.reason]
  local metadata = r.metadata
  if r.field ~= "" then
    metadata.field = r.field
  end
  local details = {
    '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":' .. quote(r.reason)
      .. ',"domain":' .. quote(LIMITS.domain) .. ',"metadata":' .. encode_map(metadata) .. "}",
  }
  if r.field ~= "" then
    details[#details + 1] = '{"@type":"type.googleapis.com/google.rpc.BadRequest","'
      .. LIMITS.field_violations .. '":[{"field":' .. quote(r.field)
      .. ',"description":' .. quote(r.message) .. "}]}"
  end
  local body = '{"code":' .. spec.code .. ',"message":' .. quote(r.message)
    .. ',"details":[' .. table.concat(details, ",") .. "]}"
  -- marks the reply as made here, so local_reply_config leaves its body alone
  handle:streamInfo():dynamicMetadata():set(LIMITS.metadata_namespace, "reason", r.reason)
  handle:respond({ [":status"] = tostring(spec.status), ["content-type"] = "application/json" }, body)
end

-- A strict RFC 8259 parser ------------------------------------------------------------
-- Values: { t = "object", fields = { {name, value}, ... } }, { t = "array", items },
-- { t = "string", v }, { t = "number", int = bool }, { t = "bool" }, { t = "null" }.
-- Errors are raised as refusals (tables) with error().

local function malformed(pos, what)
  error(refusal("MALFORMED_JSON", "", "the body is not valid JSON: " .. what
    .. " at byte " .. pos, { position = tostring(pos) }), 0)
end

local function skip_ws(s, i)
  -- RFC 8259 whitespace only: space, tab, line feed, carriage return
  local _, e = s:find("^[ \t\n\r]*", i)
  return e + 1
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t" }

local function utf8_char(cp)
  if cp < 0x80 then
    return string.char(cp)
  elseif cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64)
  elseif cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64,
      0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local function parse_string(s, i)
  -- s:byte(i) is the opening quote
  local out = {}
  local j = i + 1
  while true do
    local k = s:find('["\\%c]', j)
    if not k then
      malformed(i, "an unterminated string")
    end
    local chunk = s:sub(j, k - 1)
    if not valid_utf8(chunk) then
      malformed(j, "invalid UTF-8 in a string")
    end
    out[#out + 1] = chunk
    local c = s:sub(k, k)
    if c == '"' then
      return table.concat(out), k + 1
    elseif c == "\\" then
      local e = s:sub(k + 1, k + 1)
      if ESCAPES[e] then
        out[#out + 1] = ESCAPES[e]
        j = k + 2
      elseif e == "u" then
        local hex = s:match("^%x%x%x%x", k + 2)
        if not hex then
          malformed(k, "a bad \\u escape")
        end
        local cp = tonumber(hex, 16)
        j = k + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local low = s:match("^\\u(%x%x%x%x)", j)
          local lcp = low and tonumber(low, 16)
          if not lcp or lcp < 0xDC00 or lcp > 0xDFFF then
            malformed(k, "an unpaired surrogate")
          end
          cp = 0x10000 + (cp - 0xD800) * 1024 + (lcp - 0xDC00)
          j = j + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          malformed(k, "an unpaired surrogate")
        end
        out[#out + 1] = utf8_char(cp)
      else
        malformed(k, "a bad escape")
      end
    else
      malformed(k, "a control character in a string")
    end
  end
end

local parse_value

local function parse_object(s, i, depth, path)
  local fields, seen = {}, {}
  i = skip_ws(s, i + 1)
  if s:sub(i, i) == "}" then
    return { t = "object", fields = fields }, i + 1
  end
  while true do
    if s:sub(i, i) ~= '"' then
      malformed(i, "expected a double-quoted name")
    end
    local name
    name, i = parse_string(s, i)
    local field_path = path == "" and name or path .. "." .. name
    if seen[name] then
      error(refusal("DUPLICATE_FIELD", field_path, "field \"" .. field_path
        .. "\" appears twice in the body"), 0)
    end
    seen[name] = true
    i = skip_ws(s, i)
    if s:sub(i, i) ~= ":" then
      malformed(i, "expected ':'")
    end
    local value
    value, i = parse_value(s, skip_ws(s, i + 1), depth + 1, field_path)
    fields[#fields + 1] = { name, value }
    i = skip_ws(s, i)
    local c = s:sub(i, i)
    if c == "}" then
      return { t = "object", fields = fields }, i + 1
    elseif c ~= "," then
      malformed(i, "expected ',' or '}'")
    end
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "}" then
      malformed(i, "a trailing comma")
    end
  end
end

local function parse_array(s, i, depth, path)
  local items = {}
  i = skip_ws(s, i + 1)
  if s:sub(i, i) == "]" then
    return { t = "array", items = items }, i + 1
  end
  while true do
    local value
    value, i = parse_value(s, i, depth + 1, path .. "[" .. #items .. "]")
    items[#items + 1] = value
    i = skip_ws(s, i)
    local c = s:sub(i, i)
    if c == "]" then
      return { t = "array", items = items }, i + 1
    elseif c ~= "," then
      malformed(i, "expected ',' or ']'")
    end
    i = skip_ws(s, i + 1)
    if s:sub(i, i) == "]" then
      malformed(i, "a trailing comma")
    end
  end
end

parse_value = function(s, i, depth, path)
  if depth > MAX_DEPTH then
    malformed(i, "nesting deeper than " .. MAX_DEPTH)
  end
  local c = s:sub(i, i)
  if c == "{" then
    return parse_object(s, i, depth, path)
  elseif c == "[" then
    return parse_array(s, i, depth, path)
  elseif c == '"' then
    local v, j = parse_string(s, i)
    return { t = "string", v = v }, j
  elseif s:find("^true", i) then
    return { t = "bool" }, i + 4
  elseif s:find("^false", i) then
    return { t = "bool" }, i + 5
  elseif s:find("^null", i) then
    return { t = "null" }, i + 4
  end
  local int = s:match("^-?0", i) or s:match("^-?[1-9]%d*", i)
  if not int then
    malformed(i, "an unexpected character")
  end
  local j = i + #int
  local frac = s:match("^%.%d+", j)
  if s:sub(j, j) == "." and not frac then
    malformed(j, "a bad number")
  end
  j = j + (frac and #frac or 0)
  local exp = s:match("^[eE][+-]?%d+", j)
  if s:find("^[eE]", j) and not exp then
    malformed(j, "a bad number")
  end
  j = j + (exp and #exp or 0)
  return { t = "number", int = not frac and not exp, v = s:sub(i, j - 1) }, j
end

local function parse(s)
  local value, i = parse_value(s, skip_ws(s, 1), 1, "")
  i = skip_ws(s, i)
  if i <= #s then
    malformed(i, "content after the JSON value")
  end
  return value
end

-- The schema check ----------------------------------------------------------------------
-- A field spec: { kind = "string" | "bytes" | "bool" | "int" | "float" | "enum" |
-- "message" | "struct" | "list" | "any", message = full name, repeated, map = spec }.

local check_message

local WANTS = { string = "a string", bytes = "a base64 string", bool = "true or false",
  int = "an integer", float = "a number", enum = "an enum name or number",
  message = "an object", struct = "an object", list = "an array" }

local function wrong_type(path, spec)
  error(refusal("WRONG_JSON_TYPE", path, "field \"" .. path .. "\" must be "
    .. (spec.repeated and "an array" or spec.map and "an object" or WANTS[spec.kind])), 0)
end

local function check_scalar(value, spec, path)
  local t, kind = value.t, spec.kind
  if t == "null" or kind == "any" then
    return
  end
  local ok
  if kind == "string" or kind == "bytes" then
    ok = t == "string"
  elseif kind == "bool" then
    ok = t == "bool"
  elseif kind == "int" then
    ok = (t == "number" and value.int) or (t == "string" and value.v:find("^-?%d+$") ~= nil)
  elseif kind == "float" then
    ok = t == "number" or (t == "string" and (value.v == "NaN" or value.v == "Infinity"
      or value.v == "-Infinity" or tonumber(value.v) ~= nil))
  elseif kind == "enum" then
    ok = t == "string" or (t == "number" and value.int)
  elseif kind == "message" then
    ok = t == "object"
    if ok then
      check_message(value, spec.message, path, {})
    end
  elseif kind == "struct" then
    ok = t == "object"
  elseif kind == "list" then
    ok = t == "array"
  end
  if not ok then
    wrong_type(path, spec)
  end
end

local function check_field(value, spec, path)
  if value.t == "null" then
    return
  end
  if spec.repeated then
    if value.t ~= "array" then
      wrong_type(path, spec)
    end
    for n, item in ipairs(value.items) do
      check_scalar(item, { kind = spec.kind, message = spec.message }, path .. "[" .. (n - 1) .. "]")
    end
  elseif spec.map then
    if value.t ~= "object" then
      wrong_type(path, spec)
    end
    for _, pair in ipairs(value.fields) do
      check_scalar(pair[2], spec.map, path .. "." .. pair[1])
    end
  else
    check_scalar(value, spec, path)
  end
end

-- path_fields: proto names bound by the URL (refused in the body).
check_message = function(value, message_name, path, path_fields)
  local message = MESSAGES[message_name]
  local given = {}
  for _, pair in ipairs(value.fields) do
    local name, field_value = pair[1], pair[2]
    local proto_name = message.names[name]
    local field_path = path == "" and (proto_name or name) or path .. "." .. (proto_name or name)
    if not proto_name then
      error(refusal("UNKNOWN_FIELD", field_path, "unknown field \"" .. field_path
        .. "\" in the body"), 0)
    end
    if path_fields[proto_name] then
      error(refusal("PATH_FIELD_IN_BODY", field_path, "field \"" .. field_path
        .. "\" is set by the URL and may not be in the body"), 0)
    end
    if given[proto_name] then
      error(refusal("DUPLICATE_FIELD", field_path, "field \"" .. field_path
        .. "\" appears twice in the body (as \"" .. given[proto_name] .. "\" and \""
        .. name .. "\")"), 0)
    end
    given[proto_name] = name
    check_field(field_value, message.fields[proto_name], field_path)
  end
end

-- The request -----------------------------------------------------------------------------

local function unescape(s)
  s = s:gsub("%+", " ")
  return (s:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

local function route_of(method, path)
  for _, route in ipairs(ROUTES) do
    if route.method == method and path:find(route.pattern) then
      return route
    end
  end
  return nil
end

local function check_query(route, query)
  local seen = {}
  for pair in query:gmatch("[^&]+") do
    local key = unescape(pair:match("^[^=]*"))
    local spec = route.query[key]
    if not spec then
      error(refusal("UNKNOWN_FIELD", key, "unknown query parameter \"" .. key .. "\"",
        { location = "query" }), 0)
    end
    if seen[key] and not spec.repeated then
      error(refusal("DUPLICATE_FIELD", key, "query parameter \"" .. key
        .. "\" appears twice", { location = "query" }), 0)
    end
    seen[key] = true
  end
end

local function check_body(handle, route)
  local length = tonumber(handle:headers():get("content-length") or "")
  if length and length > LIMITS.max_body_bytes then
    error(refusal("BODY_TOO_LARGE", "", "the body is larger than "
      .. LIMITS.max_body_bytes .. " bytes", { limit = tostring(LIMITS.max_body_bytes) }), 0)
  end
  local buffered = handle:body()
  local size = buffered and buffered:length() or 0
  if size > LIMITS.max_body_bytes then
    error(refusal("BODY_TOO_LARGE", "", "the body is larger than "
      .. LIMITS.max_body_bytes .. " bytes", { limit = tostring(LIMITS.max_body_bytes) }), 0)
  end
  if size == 0 then
    return
  end
  local value = parse(buffered:getBytes(0, size))
  if route.body == "*" then
    if value.t ~= "object" then
      error(refusal("WRONG_JSON_TYPE", "", "the body must be a JSON object"), 0)
    end
    check_message(value, route.message, "", route.path_fields)
  else
    check_field(value, route.body_field, route.body)
  end
end

-- gRPC metadata keys are lower-case letters, digits and "-_." (HTTP allows more, such
-- as "'" or "*"): a service's gRPC core refuses any other name, which would be a 500.
local function bad_header_name(headers)
  for name, _ in pairs(headers) do
    if name:sub(1, 1) ~= ":" and not name:find("^[0-9a-z_.-]+$") then
      return name
    end
  end
  return nil
end

local function check(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  local grpc = content_type:find("^application/grpc") ~= nil
  local name = bad_header_name(headers)
  if name then
    return refusal("INVALID_HEADER_NAME", "", "a header name is not allowed (metadata: header): "
      .. "header names are lower-case letters, digits and - _ .",
      { header = name }), grpc
  end
  if grpc then
    return nil
  end
  local full = headers:get(":path") or ""
  if #full > LIMITS.max_url_bytes then
    return refusal("URI_TOO_LONG", "", "the URL is longer than " .. LIMITS.max_url_bytes
      .. " bytes", { limit = tostring(LIMITS.max_url_bytes) })
  end
  local path, query = full:match("^([^?]*)%??(.*)$")
  local route = route_of(headers:get(":method"), path)
  if not route then
    return nil
  end
  local ok, err = pcall(function()
    check_query(route, query)
    if route.body ~= "" then
      check_body(handle, route)
    end
  end)
  if ok then
    return nil
  end
  if type(err) ~= "table" then
    error(err, 0)
  end
  return err
end

function envoy_on_request(handle)
  local r, grpc = check(handle)
  if r and grpc then
    handle:respond({ [":status"] = "200", ["content-type"] = "application/grpc",
      ["grpc-status"] = tostring(ERRORS[r.reason].code), ["grpc-message"] = r.message }, "")
  elseif r then
    respond(handle, r)
  end
end
