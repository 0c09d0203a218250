/**
 * RFC 6455 §7.4.1 WebSocket close codes, one name each, for the relay, the worker and the
 * page (which bundles this file, so it imports nothing).
 * `CLOSE_ABNORMAL` is never sent: it is what a peer sees when a connection just dropped.
 */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_ABNORMAL = 1006;
export const CLOSE_POLICY = 1008;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_INTERNAL = 1011;
/** "Try Again Later": the peer did not keep up (send buffer past the cap). */
export const CLOSE_TRY_LATER = 1013;
