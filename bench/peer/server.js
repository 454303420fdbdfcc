// The peer bench/http.py measures us against: a token server as operators run it today.
// express + cors + Agora's own AccessToken2 builder (agora-token), answering the
// agora-token-service route GET /rtc/:channel/:role/:tokenType/:uid/ with no authentication,
// no policy, no rate limit and no log line. One node process, as `node server.js` runs it.
"use strict";

const express = require("express");
const cors = require("cors");
const { RtcTokenBuilder, RtcRole } = require("agora-token");

const APP_ID = process.env.APP_ID;
const APP_CERTIFICATE = process.env.APP_CERTIFICATE;
const PORT = Number(process.env.PORT || 8081);
const DEFAULT_EXPIRE = 3600;

if (!/^[0-9a-fA-F]{32}$/.test(APP_ID || "") || !/^[0-9a-fA-F]{32}$/.test(APP_CERTIFICATE || "")) {
  console.error("APP_ID and APP_CERTIFICATE must be 32 hexadecimal characters");
  process.exit(2);
}

const app = express();
app.disable("x-powered-by");
app.use(cors());

// The tutorial servers' nocache middleware: a token must never be cached.
function nocache(_req, res, next) {
  res.header("Cache-Control", "private, no-cache, no-store, must-revalidate");
  res.header("Expires", "-1");
  res.header("Pragma", "no-cache");
  next();
}

app.get("/rtc/:channel/:role/:tokenType/:uid/", nocache, (req, res) => {
  const { channel, tokenType, uid } = req.params;
  const role = req.params.role === "publisher" ? RtcRole.PUBLISHER : RtcRole.SUBSCRIBER;
  const expire = Number(req.query.expiry) || DEFAULT_EXPIRE;
  let token;
  if (tokenType === "uid") {
    token = RtcTokenBuilder.buildTokenWithUid(APP_ID, APP_CERTIFICATE, channel, Number(uid), role, expire, expire);
  } else if (tokenType === "userAccount") {
    token = RtcTokenBuilder.buildTokenWithUserAccount(APP_ID, APP_CERTIFICATE, channel, uid, role, expire, expire);
  } else {
    return res.status(400).json({ error: "tokenType must be uid or userAccount" });
  }
  res.json({ rtcToken: token, expire });
});

app.listen(PORT, "127.0.0.1", () => console.log(`peer listening on 127.0.0.1:${PORT}`));
