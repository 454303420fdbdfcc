// Agora's own AccessToken2 (npm agora-token, pinned in package.json), driven in one batch
// for tests/test_tokens_interop.py: one node start for any number of cases.
//
// stdin:  a JSON array of cases, each {kind?, args?, app_id, app_certificate, issue_ts, salt,
//         token?, wrong_certificate?}
// stdout: {zlib: this node's zlib version, results: [...]}, results in the cases' order, each
//   mirror     the token built with AccessToken2 and the service classes, as the builder does
//   builder    the token from Agora's builder itself, its issue time and salt pinned
//   parsed     what Agora's parser makes of `token` (from_string + verifySignature)
//   reencoded  `token` inflated and deflated again by this node's zlib
//   error      what went wrong with this case (the other cases still run)
'use strict'

const zlib = require('zlib')
const {
    AccessToken2, Rtm2Permissions, ServiceApaas, ServiceChat, ServiceConvoAI, ServiceFpa,
    ServiceRtc, ServiceRtm, ServiceRtm2, ServiceStt,
} = require('agora-token/src/AccessToken2')
const { ApaasTokenBuilder } = require('agora-token/src/ApaasTokenBuilder')
const { ChatTokenBuilder } = require('agora-token/src/ChatTokenBuilder')
const { ConvoAITokenBuilder } = require('agora-token/src/ConvoAITokenBuilder')
const { FpaTokenBuilder } = require('agora-token/src/FpaTokenBuilder')
const { RtcTokenBuilder, Role } = require('agora-token/src/RtcTokenBuilder2')
const { RtmTokenBuilder } = require('agora-token/src/RtmTokenBuilder2')
const { SttTokenBuilder } = require('agora-token/src/SttTokenBuilder')
const md5 = require('md5')

function newToken(c, expire) {
    const token = new AccessToken2(c.app_id, c.app_certificate, c.issue_ts, expire)
    token.salt = c.salt
    return token
}

// RTC privileges as RtcTokenBuilder2 / ConvoAITokenBuilder / SttTokenBuilder add them.
function rtcService(a, publisher) {
    const rtc = new ServiceRtc(a.channel, a.account)
    rtc.add_privilege(ServiceRtc.kPrivilegeJoinChannel, a.join)
    if (publisher) {
        rtc.add_privilege(ServiceRtc.kPrivilegePublishAudioStream, a.audio)
        rtc.add_privilege(ServiceRtc.kPrivilegePublishVideoStream, a.video)
        rtc.add_privilege(ServiceRtc.kPrivilegePublishDataStream, a.data)
    }
    return rtc
}

function rtmService(user, expire) {
    const rtm = new ServiceRtm(user)
    rtm.add_privilege(ServiceRtm.kPrivilegeLogin, expire)
    return rtm
}

function permissions(list) {
    const p = new Rtm2Permissions()
    for (const [resource, permission, names] of list) p.add(resource, permission, names)
    return p
}

// RTC + RTM (+ an extra empty service): RtcTokenBuilder.buildTokenWithRtm2, ConvoAI, STT.
function rtcRtm(c, extra) {
    const a = c.args
    const token = newToken(c, a.expire)
    token.add_service(rtcService(a, a.role === Role.PUBLISHER))
    token.add_service(rtmService(a.rtm_user, a.rtm_expire))
    if (extra) token.add_service(extra)
    return token.build()
}

function rtcRtmArgs(a) {
    return [a.channel, a.account, a.role, a.expire, a.join, a.audio, a.video, a.data, a.rtm_user, a.rtm_expire]
}

function apaasRoomUser(c) {
    const a = c.args
    const token = newToken(c, a.expire)
    token.add_service(new ServiceApaas(a.room, a.user, a.role))
    token.add_service(rtmService(a.user, a.expire))
    const chat = new ServiceChat(md5(a.user))
    chat.add_privilege(ServiceChat.kPrivilegeUser, a.expire)
    token.add_service(chat)
    return token.build()
}

// kind → [mirror(case), builder(app_id, app_certificate, args)]
const KINDS = {
    rtc: [
        c => {
            const a = c.args
            const token = newToken(c, a.expire)
            const e = a.privilege_expire
            token.add_service(rtcService({ ...a, join: e, audio: e, video: e, data: e }, a.role === Role.PUBLISHER))
            return token.build()
        },
        (id, cert, a) => RtcTokenBuilder.buildTokenWithUserAccount(
            id, cert, a.channel, a.account, a.role, a.expire, a.privilege_expire),
    ],
    rtc_privileges: [
        c => {
            const token = newToken(c, c.args.expire)
            token.add_service(rtcService(c.args, true))
            return token.build()
        },
        (id, cert, a) => RtcTokenBuilder.BuildTokenWithUserAccountAndPrivilege(
            id, cert, a.channel, a.account, a.expire, a.join, a.audio, a.video, a.data),
    ],
    rtc_rtm: [
        c => rtcRtm(c),
        (id, cert, a) => RtcTokenBuilder.buildTokenWithRtm2(id, cert, ...rtcRtmArgs(a)),
    ],
    convoai: [
        c => rtcRtm(c, new ServiceConvoAI()),
        (id, cert, a) => ConvoAITokenBuilder.buildToken(id, cert, ...rtcRtmArgs(a)),
    ],
    stt: [
        c => rtcRtm(c, new ServiceStt()),
        (id, cert, a) => SttTokenBuilder.buildToken(id, cert, ...rtcRtmArgs(a)),
    ],
    rtm: [
        c => {
            const token = newToken(c, c.args.expire)
            token.add_service(rtmService(c.args.user, c.args.expire))
            return token.build()
        },
        (id, cert, a) => RtmTokenBuilder.buildToken(id, cert, a.user, a.expire),
    ],
    rtm2: [
        c => {
            const a = c.args
            const token = newToken(c, a.expire)
            const rtm2 = new ServiceRtm2(a.user, permissions(a.permissions))
            rtm2.add_privilege(ServiceRtm2.kPrivilegeLogin, a.expire)
            token.add_service(rtm2)
            return token.build()
        },
        (id, cert, a) => RtmTokenBuilder.buildTokenWithPermissions(
            id, cert, a.user, permissions(a.permissions), a.expire),
    ],
    chat_user: [
        c => {
            const token = newToken(c, c.args.expire)
            const chat = new ServiceChat(c.args.user)
            chat.add_privilege(ServiceChat.kPrivilegeUser, c.args.expire)
            token.add_service(chat)
            return token.build()
        },
        (id, cert, a) => ChatTokenBuilder.buildUserToken(id, cert, a.user, a.expire),
    ],
    chat_app: [
        c => {
            const token = newToken(c, c.args.expire)
            const chat = new ServiceChat()
            chat.add_privilege(ServiceChat.kPrivilegeApp, c.args.expire)
            token.add_service(chat)
            return token.build()
        },
        (id, cert, a) => ChatTokenBuilder.buildAppToken(id, cert, a.expire),
    ],
    fpa: [
        c => {
            const token = newToken(c, 24 * 3600)  // FpaTokenBuilder's fixed lifetime
            const fpa = new ServiceFpa()
            fpa.add_privilege(ServiceFpa.kPrivilegeLogin, 0)
            token.add_service(fpa)
            return token.build()
        },
        (id, cert) => FpaTokenBuilder.buildToken(id, cert),
    ],
    apaas_room_user: [
        apaasRoomUser,
        (id, cert, a) => ApaasTokenBuilder.buildRoomUserToken(id, cert, a.room, a.user, a.role, a.expire),
    ],
    apaas_user: [
        c => {
            const token = newToken(c, c.args.expire)
            const apaas = new ServiceApaas('', c.args.user)
            apaas.add_privilege(ServiceApaas.PRIVILEGE_USER, c.args.expire)
            token.add_service(apaas)
            return token.build()
        },
        (id, cert, a) => ApaasTokenBuilder.buildUserToken(id, cert, a.user, a.expire),
    ],
    apaas_app: [
        c => {
            const token = newToken(c, c.args.expire)
            const apaas = new ServiceApaas()
            apaas.add_privilege(ServiceApaas.PRIVILEGE_APP, c.args.expire)
            token.add_service(apaas)
            return token.build()
        },
        (id, cert, a) => ApaasTokenBuilder.buildAppToken(id, cert, a.expire),
    ],
}

// The builders make their own issue time and random salt inside; pin both for one call.
const originalBuild = AccessToken2.prototype.build
function withPinned(c, fn) {
    AccessToken2.prototype.build = function () {
        this.issueTs = c.issue_ts
        this.salt = c.salt
        return originalBuild.call(this)
    }
    try {
        return fn()
    } finally {
        AccessToken2.prototype.build = originalBuild
    }
}

// A service's fields as plain JSON: strings for Buffers, details for RTM2 permissions.
function plain(value) {
    if (Buffer.isBuffer(value)) return value.toString('utf8')
    if (value instanceof Rtm2Permissions) return plain(value.details)
    if (Array.isArray(value)) return value.map(plain)
    if (value && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
    }
    return value
}

function parse(c) {
    const token = new AccessToken2()
    if (!token.from_string(c.token)) return { ok: false }
    return {
        ok: true,
        verified: token.verifySignature(c.app_certificate),
        verified_with_wrong_certificate: c.wrong_certificate ? token.verifySignature(c.wrong_certificate) : null,
        app_id: plain(token.appId),
        issue_ts: token.issueTs,
        expire: token.expire,
        salt: token.salt,
        services: token.services.map(s => {
            const fields = {}
            for (const [key, value] of Object.entries(s)) {
                if (key !== '__type' && key !== '__privileges') fields[key.replace(/^__/, '')] = plain(value)
            }
            return { type: s.service_type(), privileges: plain(s.__privileges), fields }
        }),
    }
}

function run(c) {
    const out = {}
    try {
        if (c.kind !== undefined) {
            const [mirror, builder] = KINDS[c.kind] || []
            if (!mirror) throw new Error(`unknown kind ${c.kind}`)
            out.mirror = mirror(c)
            out.builder = withPinned(c, () => builder(c.app_id, c.app_certificate, c.args))
        }
        if (c.token !== undefined) {
            out.parsed = parse(c)
            const content = zlib.inflateSync(Buffer.from(c.token.slice(3), 'base64'))
            out.reencoded = `007${zlib.deflateSync(content).toString('base64')}`
        }
    } catch (e) {
        out.error = String(e && e.stack || e)
    }
    return out
}

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', chunk => { input += chunk })
process.stdin.on('end', () => {
    process.stdout.write(JSON.stringify({ zlib: process.versions.zlib, results: JSON.parse(input).map(run) }))
})
