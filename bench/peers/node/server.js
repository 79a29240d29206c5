// The Node peer (libuv underneath) for the IO workloads, in Node's idiom:
// `net` for echo (a 'data' handler writing the chunk back), `http` for the
// keep-alive hello world.
//
//   node server.js serve echo|http   -> "port <n>" once listening on
//                                       127.0.0.1, then serves until killed
'use strict';
const net = require('net');
const http = require('http');

const [, , verb, mode] = process.argv;
let server;
if (verb === 'serve' && mode === 'echo') {
  server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', () => socket.destroy());
  });
} else if (verb === 'serve' && mode === 'http') {
  const hello = Buffer.from('Hello, World!');
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': hello.length });
    res.end(hello);
  });
} else {
  process.stderr.write(`unsupported workload ${mode}\n`);
  process.exit(2);
}
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`port ${server.address().port}\n`);
});
