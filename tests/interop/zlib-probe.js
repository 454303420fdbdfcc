// Which zlib does this node deflate with? For tests/node_peer.py, which compares the
// output with Python's zlib before trusting this node for whole-token byte identity.
// Needs nothing from node_modules.
//
// stdin:  a JSON array of base64 buffers
// stdout: {version, zlib, deflated: [base64 of zlib.deflateSync(buffer), ...]}
'use strict'

const zlib = require('zlib')

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', chunk => { input += chunk })
process.stdin.on('end', () => {
    const deflated = JSON.parse(input).map(b => zlib.deflateSync(Buffer.from(b, 'base64')).toString('base64'))
    process.stdout.write(JSON.stringify({ version: process.version, zlib: process.versions.zlib, deflated }))
})
