/**
 * The Lua scripts of `redis_store.ts`: each changes the keys of one chat (one hash tag, so one
 * Cluster slot) atomically, the way one `kv.atomic()` does for the KV engine. A turn is a hash
 * with `json` and `v`; `v` is the version a compare-and-set is judged by.
 */

/**
 * Stores a visitor message, its chat record and its new turn, unless the turn exists.
 * KEYS: turn, messages, record, turns. ARGV: turn json, seq, message json, record json, turn id.
 */
export const PUT_VISITOR_MESSAGE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[2], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'v', 1)
return 1
`;

/**
 * Writes messages (replacing any with the same seq) and deletes the partial answer; with a
 * version, only if the turn still has it, and then stores the turn and bumps its version.
 * KEYS: turn, messages, partial. ARGV: version ('' for none), turn json, delete partial
 * ('1'/'0'), then seq and json of each message.
 */
export const WRITE_CHAT = `
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return false end
for i = 4, #ARGV, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[2], ARGV[i], ARGV[i])
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
if ARGV[3] == '1' then redis.call('DEL', KEYS[3]) end
if ARGV[1] == '' then return 0 end
redis.call('HSET', KEYS[1], 'json', ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'v', 1)
`;

/**
 * Takes a turn out of the open-turn index if it is still there with the arrival time it was
 * closed with (a retry that re-opened it meanwhile has given it a new one, and stays).
 * KEYS: open turns. ARGV: turn id, createdAtMs.
 */
export const REMOVE_OPEN_TURN = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
`;

/**
 * Deletes a chat's keys and the turns named; the turn set goes only if no other turn joined
 * it meanwhile. KEYS: record, messages, seq, worker state, partial, turns, then turn keys.
 * ARGV: the turn ids of those turn keys.
 */
export const DELETE_CHAT = `
for i = 7, #KEYS do redis.call('DEL', KEYS[i]) end
for i = 1, #ARGV do redis.call('SREM', KEYS[6], ARGV[i]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if redis.call('SCARD', KEYS[6]) == 0 then redis.call('DEL', KEYS[6]) end
return 1
`;

/**
 * Stores a partial answer unless the stored one has a higher `seq` (a relay's late
 * write-through must not undo another relay's newer copy). KEYS: partial. ARGV: seq, json.
 */
export const SET_PARTIAL = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored.seq) == 'number' and stored.seq > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
`;
