// winston-loki, unchanged, pushing a few lines to Vigil's Loki route.
// Usage: node push.js BASE_URL TOKEN protobuf|json RUN_ID
// Exits 0 once every line was acknowledged (2xx), 1 when a push failed.
'use strict'
const winston = require('winston')
const LokiTransport = require('winston-loki')

const [host, token, format, run] = process.argv.slice(2)
let failed = false
const transport = new LokiTransport({
  host,
  basicAuth: `tenant:${token}`,
  labels: { app: 'shop', host: 'web-9', run },
  json: format === 'json',
  interval: 0.2,
  gracefulShutdown: false,
  clearOnError: true,
  onConnectionError: (err) => {
    failed = true
    console.error(`push failed: ${err.message}`)
  }
})
const logger = winston.createLogger({ transports: [transport] })

logger.info('order placed', { labels: { unit: 'shop.service' } })
logger.error('payment declined', { order: 'A-17' })
logger.warn('stock low')

transport.flush().then(
  () => {
    transport.close()
    process.exit(failed ? 1 : 0)
  },
  (err) => {
    console.error(`flush failed: ${err.message}`)
    process.exit(1)
  }
)
