// rtcgw's SIP.js test phone: a second SIP-over-WebSocket client, independent of the JsSIP
// web phone, built on SIP.js's own API (UserAgent, Registerer, Inviter, Invitation).
// window.rtcgwSipjs holds its state (JSON-able through state()) and the actions the
// end-to-end tests drive: register, call, answer, hangup.
import {
  Inviter,
  Registerer,
  RegistererState,
  SessionState,
  UserAgent,
  version,
} from "./vendor/sip.js/index.js";

const PROBE_PERIOD_MS = 20;
const PROBE_LIMIT_MS = 60000;

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

const phone = {
  version,
  server: query.get("ws"),
  domain: query.get("domain") || location.hostname,
  ready: false,
  connected: false,
  registered: false,
  registrationState: "not registered",
  // Status code of the last final response to a REGISTER: what the registrar said.
  registerStatus: null,
  callState: "idle",
  direction: null,
  endedBy: null,
  finalStatus: null,
  lastError: null,
  // Filled in once a call starts, with the same fields as the JsSIP phone's probe.
  probe: null,
  stats: null,
  userAgent: null,
  registerer: null,
  session: null,
  register,
  call,
  answer,
  hangup,
  state,
};
window.rtcgwSipjs = phone;

function showError(text) {
  phone.lastError = text;
  $("error").textContent = text;
  $("error").hidden = false;
}

function setCallState(text) {
  phone.callState = text;
  $("call-state").textContent = text;
}

function setRegistration(text, registered) {
  phone.registrationState = text;
  phone.registered = registered;
  $("registration").textContent = text;
}

// The JSON-able part of the phone, with the peer connection's state.
function state() {
  const pc = peerConnection();
  return {
    version: phone.version,
    server: phone.server,
    domain: phone.domain,
    ready: phone.ready,
    connected: phone.connected,
    registered: phone.registered,
    registrationState: phone.registrationState,
    registerStatus: phone.registerStatus,
    callState: phone.callState,
    direction: phone.direction,
    endedBy: phone.endedBy,
    finalStatus: phone.finalStatus,
    lastError: phone.lastError,
    probe: phone.probe,
    stats: phone.stats,
    pc: pc
      ? {
          ice: pc.iceConnectionState,
          connection: pc.connectionState,
          local: (pc.localDescription || {}).sdp,
          remote: (pc.remoteDescription || {}).sdp,
        }
      : null,
  };
}

function peerConnection() {
  const handler = phone.session && phone.session.sessionDescriptionHandler;
  return handler ? handler.peerConnection : undefined;
}

function mediaOptions() {
  return { constraints: { audio: true, video: false } };
}

// Connect to the gateway and register user@domain; the registrar's answer arrives later
// (registerStatus, registered).
async function register(user, password, displayName) {
  if (!phone.server) {
    throw new Error("no ?ws= in the page's address: which gateway?");
  }
  const uri = UserAgent.makeURI(`sip:${user}@${phone.domain}`);
  if (!uri) {
    throw new Error(`sip:${user}@${phone.domain} is not a SIP URI`);
  }
  const userAgent = new UserAgent({
    uri,
    authorizationUsername: user,
    authorizationPassword: password || "",
    displayName: displayName || user,
    transportOptions: { server: phone.server },
    logLevel: query.get("log") || "warn",
    // Host candidates only: no STUN or TURN server on loopback.
    sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] } },
    delegate: {
      onConnect: () => {
        phone.connected = true;
      },
      onDisconnect: (error) => {
        phone.connected = false;
        setRegistration("not registered", false);
        if (error) {
          showError(`The WebSocket to ${phone.server} closed: ${error.message || error}`);
        }
      },
      onInvite: (invitation) => onInvitation(invitation),
    },
  });
  phone.userAgent = userAgent;
  const registerer = new Registerer(userAgent);
  phone.registerer = registerer;
  registerer.stateChange.addListener((next) => {
    setRegistration(next.toLowerCase(), next === RegistererState.Registered);
  });
  setRegistration("connecting", false);
  await userAgent.start();
  await registerer.register({
    requestDelegate: {
      onAccept: (response) => {
        phone.registerStatus = response.message.statusCode;
      },
      onReject: (response) => {
        phone.registerStatus = response.message.statusCode;
        showError(
          `Registration rejected: ${response.message.statusCode} ${response.message.reasonPhrase}`,
        );
      },
    },
  });
  return true;
}

// Call target (a user at the page's domain, or a SIP URI).
async function call(target) {
  if (!phone.userAgent) {
    throw new Error("register first");
  }
  if (phone.session) {
    throw new Error(`a call is already ${phone.callState}`);
  }
  const text = /^sips?:/i.test(target) ? target : `sip:${target}@${phone.domain}`;
  const uri = UserAgent.makeURI(text);
  if (!uri) {
    throw new Error(`${text} is not a SIP URI`);
  }
  const inviter = new Inviter(phone.userAgent, uri, {
    sessionDescriptionHandlerOptions: mediaOptions(),
  });
  follow(inviter, "outgoing");
  await inviter.invite({
    requestDelegate: {
      onAccept: (response) => {
        phone.finalStatus = response.message.statusCode;
      },
      onReject: (response) => {
        phone.finalStatus = response.message.statusCode;
        showError(`Call rejected: ${response.message.statusCode} ${response.message.reasonPhrase}`);
      },
    },
  });
  return true;
}

function onInvitation(invitation) {
  if (phone.session) {
    // One call at a time: a second caller hears busy.
    invitation.reject({ statusCode: 486 });
    return;
  }
  follow(invitation, "incoming");
  setCallState("ringing");
}

async function answer() {
  const session = phone.session;
  if (!session || phone.direction !== "incoming" || session.state !== SessionState.Initial) {
    throw new Error(`no incoming call to answer (${phone.callState})`);
  }
  await session.accept({ sessionDescriptionHandlerOptions: mediaOptions() });
  return true;
}

// End the call whatever its state: BYE once established, CANCEL or a rejection before.
async function hangup() {
  const session = phone.session;
  if (!session) {
    return false;
  }
  phone.endedBy = "local";
  if (session.state === SessionState.Established) {
    await session.bye();
  } else if (phone.direction === "outgoing") {
    await session.cancel();
  } else {
    await session.reject();
  }
  return true;
}

function follow(session, direction) {
  phone.session = session;
  phone.direction = direction;
  phone.endedBy = null;
  phone.finalStatus = null;
  phone.probe = newProbe();
  setCallState(session.state.toLowerCase());
  session.delegate = {
    onBye: (bye) => {
      phone.endedBy = "remote";
      bye.accept();
    },
    onSessionDescriptionHandler: (handler) => playRemote(handler),
  };
  session.stateChange.addListener((next) => {
    setCallState(next.toLowerCase());
    if (next === SessionState.Established) {
      phone.probe.answeredAt = performance.now();
    } else if (next === SessionState.Terminated) {
      $("remote-audio").srcObject = null;
      phone.session = null;
    }
  });
  watchStats(session, phone.probe);
}

function playRemote(handler) {
  // Received audio is decoded, and counted in totalAudioEnergy, while an element plays it.
  const audio = $("remote-audio");
  audio.srcObject = handler.remoteMediaStream;
  audio.play().catch(() => {
    // Autoplay refused: the stats still show packets; energy needs a played stream.
  });
}

function newProbe() {
  return {
    answeredAt: null,
    firstPacketAt: null,
    firstEnergyAt: null,
    packetsReceived: 0,
    packetsSent: 0,
    totalAudioEnergy: 0,
    audioLevel: null,
  };
}

// Poll getStats while the call lasts (at most PROBE_LIMIT_MS): when the first inbound
// audio packet and the first audio energy were seen, and the packet counts.
function watchStats(session, probe) {
  const started = performance.now();
  let busy = false;
  const timer = setInterval(async () => {
    const pc = session.sessionDescriptionHandler && session.sessionDescriptionHandler.peerConnection;
    if (performance.now() - started > PROBE_LIMIT_MS || session.state === SessionState.Terminated) {
      clearInterval(timer);
      return;
    }
    if (!pc || busy) {
      return;
    }
    busy = true;
    try {
      const report = await pc.getStats();
      const now = performance.now();
      report.forEach((entry) => {
        if (entry.kind !== "audio") {
          return;
        }
        if (entry.type === "outbound-rtp") {
          probe.packetsSent = entry.packetsSent || 0;
        } else if (entry.type === "inbound-rtp") {
          probe.packetsReceived = entry.packetsReceived || 0;
          probe.totalAudioEnergy = entry.totalAudioEnergy || 0;
          probe.audioLevel = entry.audioLevel === undefined ? null : entry.audioLevel;
          if (probe.firstPacketAt === null && probe.packetsReceived > 0) {
            probe.firstPacketAt = now;
          }
          if (
            probe.firstEnergyAt === null &&
            (probe.totalAudioEnergy > 0 || (probe.audioLevel || 0) > 0)
          ) {
            probe.firstEnergyAt = now;
          }
        }
      });
      phone.stats = { packetsSent: probe.packetsSent, packetsReceived: probe.packetsReceived };
    } catch (error) {
      // The connection closed between two polls.
    } finally {
      busy = false;
    }
  }, PROBE_PERIOD_MS);
}

phone.ready = true;
$("status").textContent = `SIP.js ${version}, gateway ${phone.server || "not given"}`;
