// rtcgw web phone: JsSIP in a single page, configured by the gateway's config.json.
// window.rtcgwPhone exposes the phone's state so that browser tests can wait on it.
"use strict";

(function () {
  const STORAGE_KEY = "rtcgw.phone.account";
  // With no STUN/TURN server only host candidates come, all at once: a short grace after
  // the first one is enough. With servers, the first server-reflexive or relay candidate
  // is what the far end needs; gathering longer only delays the INVITE or the answer.
  const HOST_ONLY_GRACE_MS = 200;
  const GATHERING_CAP_MS = 2000;
  const STATS_PERIOD_MS = 1000;

  const $ = (id) => document.getElementById(id);
  const phone = {
    jssipVersion: null,
    config: null,
    connected: false,
    registered: false,
    registrationState: "not registered",
    callState: "idle",
    direction: null,
    held: false,
    lastError: null,
    stats: null,
    ua: null,
    session: null,
  };
  window.rtcgwPhone = phone;

  let statsTimer = null;
  let previous = null;

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(text) {
    phone.lastError = text;
    const box = $("error");
    box.textContent = text;
    box.hidden = !text;
  }

  function clearError() {
    phone.lastError = null;
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function setRegistration(state, registered) {
    phone.registrationState = state;
    phone.registered = registered;
    $("registration").textContent = state;
    $("unregister").disabled = !registered;
    updateButtons();
  }

  function setCallState(state) {
    phone.callState = state;
    $("call-state").textContent = state;
    updateButtons();
  }

  function updateButtons() {
    const state = phone.callState;
    const idle = state === "idle" || state === "ended" || state === "failed";
    const incoming = state === "ringing" && phone.direction === "incoming";
    const live = state === "confirmed" || state === "accepted";
    $("call").disabled = !(phone.connected && idle);
    $("answer").disabled = !incoming;
    $("reject").disabled = !incoming;
    $("hangup").disabled = idle || incoming;
    $("mute").disabled = !live;
    $("hold").disabled = !live;
    for (const key of document.querySelectorAll("#keypad button[data-digit]")) {
      key.disabled = !live;
    }
    $("ringing").hidden = !incoming;
  }

  function loadAccount() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
      $("user").value = saved.user || "";
      $("password").value = saved.password || "";
      $("display-name").value = saved.displayName || "";
    } catch (error) {
      localStorage.removeItem(STORAGE_KEY);
    }
  }

  function saveAccount(account) {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(account));
  }

  function wsUrl(config) {
    if (config.ws_url) {
      return config.ws_url;
    }
    const scheme = config.ws_scheme || "wss";
    const port = config.ws_port || location.port;
    return `${scheme}://${location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname}:${port}`;
  }

  function sipDomain(config) {
    return config.sip_domain || location.hostname;
  }

  function pcConfig() {
    // iceTransportPolicy is left at its default ("all"): host candidates are wanted.
    return { iceServers: phone.config.ice_servers || [] };
  }

  function targetUri(text) {
    const target = text.trim();
    if (/^sips?:/i.test(target)) {
      return target;
    }
    const user = target.includes("@") ? target : `${target}@${sipDomain(phone.config)}`;
    return `sip:${user}`;
  }

  function callOptions() {
    return {
      mediaConstraints: { audio: true, video: false },
      pcConfig: pcConfig(),
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    };
  }

  function register(event) {
    event.preventDefault();
    clearError();
    const account = {
      user: $("user").value.trim(),
      password: $("password").value,
      displayName: $("display-name").value.trim(),
    };
    if (!account.user) {
      showError("Enter a user name to register.");
      return;
    }
    saveAccount(account);
    if (phone.ua) {
      phone.ua.stop();
      phone.ua = null;
    }
    const url = wsUrl(phone.config);
    const socket = new JsSIP.WebSocketInterface(url);
    const settings = {
      sockets: [socket],
      uri: `sip:${account.user}@${sipDomain(phone.config)}`,
      authorization_user: account.user,
      password: account.password,
      register: true,
      session_timers: false,
    };
    if (account.displayName) {
      settings.display_name = account.displayName;
    }
    let ua;
    try {
      ua = new JsSIP.UA(settings);
    } catch (error) {
      showError(`Cannot start the phone: ${error.message || error}`);
      return;
    }
    phone.ua = ua;
    setRegistration("connecting", false);
    setStatus(`connecting to ${url}`);
    ua.on("connected", () => {
      phone.connected = true;
      setStatus(`connected to ${url}`);
      updateButtons();
    });
    ua.on("disconnected", (e) => {
      phone.connected = false;
      setRegistration("not registered", false);
      const why = e && e.reason ? ` (${e.reason})` : e && e.code ? ` (code ${e.code})` : "";
      showError(
        `The WebSocket to ${url} failed or closed${why}. ` +
          "Is the gateway running, and is its certificate trusted by this browser?",
      );
      setStatus("disconnected");
    });
    ua.on("registered", () => {
      clearError();
      setRegistration("registered", true);
      setStatus(`registered as ${settings.uri}`);
    });
    ua.on("unregistered", () => setRegistration("not registered", false));
    ua.on("registrationFailed", (e) => {
      const response = e.response;
      const detail = response ? `${response.status_code} ${response.reason_phrase}` : e.cause;
      setRegistration(`failed: ${detail}`, false);
      showError(`Registration rejected: ${detail}`);
    });
    ua.on("newRTCSession", (e) => onSession(e.session, e.originator));
    ua.start();
  }

  function unregister() {
    if (phone.ua) {
      phone.ua.unregister({ all: false });
    }
  }

  function dial(event) {
    event.preventDefault();
    clearError();
    const text = $("target").value;
    if (!phone.ua || !text.trim()) {
      showError("Register first, then enter a number or SIP URI.");
      return;
    }
    try {
      phone.ua.call(targetUri(text), callOptions());
    } catch (error) {
      showError(`Cannot call ${text}: ${error.message || error}`);
    }
  }

  function onSession(session, originator) {
    if (phone.session && !phone.session.isEnded()) {
      // One call at a time: a second caller hears busy.
      if (originator === "remote") {
        session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      }
      return;
    }
    phone.session = session;
    phone.direction = originator === "remote" ? "incoming" : "outgoing";
    const peer = session.remote_identity;
    $("peer").textContent = peer ? `with ${peer.display_name || ""} <${peer.uri}>` : "";
    $("caller").textContent = peer ? `${peer.display_name || peer.uri.user} <${peer.uri}>` : "";
    setMuted(false);
    setHeld(false);
    setCallState(phone.direction === "incoming" ? "ringing" : "calling");

    session.on("peerconnection", (e) => watchPeerConnection(e.peerconnection));
    if (session.connection) {
      watchPeerConnection(session.connection);
    }
    session.on("icecandidate", onIceCandidate());
    session.on("progress", () => setCallState("ringing"));
    session.on("accepted", () => setCallState("accepted"));
    session.on("confirmed", () => setCallState("confirmed"));
    session.on("ended", (e) => finish("ended", e));
    session.on("failed", (e) => finish("failed", e));
    session.on("getusermediafailed", (error) => microphoneError(error));
    session.on("muted", () => setMuted(true));
    session.on("unmuted", () => setMuted(false));
    // Only our own hold changes the button: the other side's hold is theirs to undo.
    session.on("hold", (e) => e.originator === "local" && setHeld(true));
    session.on("unhold", (e) => e.originator === "local" && setHeld(false));
  }

  function onIceCandidate() {
    let timer = null;
    let done = false;
    const hostOnly = (phone.config.ice_servers || []).length === 0;
    return (e) => {
      if (done) {
        return;
      }
      const finishGathering = () => {
        if (!done) {
          done = true;
          clearTimeout(timer);
          e.ready();
        }
      };
      const type = e.candidate && e.candidate.type;
      if (!hostOnly && (type === "srflx" || type === "relay")) {
        finishGathering();
      } else if (timer === null) {
        timer = setTimeout(finishGathering, hostOnly ? HOST_ONLY_GRACE_MS : GATHERING_CAP_MS);
      }
    };
  }

  function microphoneError(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      showError(
        "The microphone was refused. Allow this page to use the microphone " +
          "(the icon in the address bar) and call again.",
      );
    } else if (name === "NotFoundError") {
      showError("No microphone was found. Connect one and call again.");
    } else {
      showError(`The microphone cannot be used: ${name || ""} ${(error && error.message) || error}`);
    }
  }

  function finish(state, e) {
    stopStats();
    const cause = e && e.cause ? e.cause : "";
    if (state === "failed" && cause === JsSIP.C.causes.USER_DENIED_MEDIA_ACCESS) {
      if (!phone.lastError) {
        showError("The microphone was refused: allow it for this page and call again.");
      }
    } else if (state === "failed" && e && e.originator !== "local") {
      const response = e.message && e.message.status_code ? ` (${e.message.status_code})` : "";
      showError(`Call failed: ${cause}${response}`);
    }
    $("remote-audio").srcObject = null;
    setCallState(cause ? `${state}` : state);
    $("call-state").textContent = cause ? `${state}: ${cause}` : state;
    phone.session = null;
    phone.direction = null;
    updateButtons();
  }

  function watchPeerConnection(pc) {
    if (pc.__rtcgwWatched) {
      return;
    }
    pc.__rtcgwWatched = true;
    pc.addEventListener("track", (event) => {
      const audio = $("remote-audio");
      audio.srcObject = event.streams[0] || new MediaStream([event.track]);
      audio.play().catch(() => {
        // Autoplay blocked: the call still works; the user's next click starts audio.
      });
    });
    startStats(pc);
  }

  function startStats(pc) {
    stopStats();
    previous = null;
    statsTimer = setInterval(() => collectStats(pc), STATS_PERIOD_MS);
  }

  function stopStats() {
    if (statsTimer !== null) {
      clearInterval(statsTimer);
      statsTimer = null;
    }
  }

  async function collectStats(pc) {
    let report;
    try {
      report = await pc.getStats();
    } catch (error) {
      return; // closed between ticks
    }
    const figures = {
      timestamp: Date.now(),
      packetsSent: 0,
      packetsReceived: 0,
      bytesSent: 0,
      bytesReceived: 0,
      bitrateOutKbps: null,
      bitrateInKbps: null,
      roundTripTimeMs: null,
      audioLevelIn: null,
      audioLevelOut: null,
      totalAudioEnergyIn: null,
    };
    report.forEach((entry) => {
      if (entry.kind !== undefined && entry.kind !== "audio") {
        return;
      }
      if (entry.type === "outbound-rtp") {
        figures.packetsSent += entry.packetsSent || 0;
        figures.bytesSent += entry.bytesSent || 0;
      } else if (entry.type === "inbound-rtp") {
        figures.packetsReceived += entry.packetsReceived || 0;
        figures.bytesReceived += entry.bytesReceived || 0;
        if (entry.audioLevel !== undefined) {
          figures.audioLevelIn = entry.audioLevel;
        }
        if (entry.totalAudioEnergy !== undefined) {
          figures.totalAudioEnergyIn = entry.totalAudioEnergy;
        }
      } else if (entry.type === "remote-inbound-rtp" && entry.roundTripTime !== undefined) {
        figures.roundTripTimeMs = entry.roundTripTime * 1000;
      } else if (entry.type === "media-source" && entry.audioLevel !== undefined) {
        figures.audioLevelOut = entry.audioLevel;
      } else if (
        entry.type === "candidate-pair" &&
        entry.nominated &&
        entry.state === "succeeded" &&
        entry.currentRoundTripTime !== undefined &&
        figures.roundTripTimeMs === null
      ) {
        figures.roundTripTimeMs = entry.currentRoundTripTime * 1000;
      }
    });
    if (previous !== null) {
      const seconds = (figures.timestamp - previous.timestamp) / 1000;
      if (seconds > 0) {
        figures.bitrateOutKbps = ((figures.bytesSent - previous.bytesSent) * 8) / seconds / 1000;
        figures.bitrateInKbps =
          ((figures.bytesReceived - previous.bytesReceived) * 8) / seconds / 1000;
      }
    }
    previous = figures;
    phone.stats = figures;
    showStats(figures);
  }

  function shown(value, digits) {
    return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
  }

  function showStats(figures) {
    $("stat-packets-sent").textContent = String(figures.packetsSent);
    $("stat-packets-received").textContent = String(figures.packetsReceived);
    $("stat-bitrate-out").textContent = shown(figures.bitrateOutKbps, 1);
    $("stat-bitrate-in").textContent = shown(figures.bitrateInKbps, 1);
    $("stat-rtt").textContent = shown(figures.roundTripTimeMs, 0);
    $("stat-level-in").textContent = shown(figures.audioLevelIn, 3);
    $("stat-level-out").textContent = shown(figures.audioLevelOut, 3);
  }

  function answer() {
    if (phone.session && phone.direction === "incoming") {
      clearError();
      phone.session.answer(callOptions());
      setCallState("answering");
    }
  }

  function reject() {
    if (phone.session) {
      phone.session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
    }
  }

  function hangup() {
    if (phone.session) {
      phone.session.terminate();
    }
  }

  function setMuted(muted) {
    phone.muted = muted;
    const button = $("mute");
    button.setAttribute("aria-pressed", muted ? "true" : "false");
    button.textContent = muted ? "Unmute" : "Mute";
  }

  function toggleMute() {
    const session = phone.session;
    if (!session) {
      return;
    }
    if (session.isMuted().audio) {
      session.unmute({ audio: true });
    } else {
      session.mute({ audio: true });
    }
  }

  function setHeld(held) {
    phone.held = held;
    const button = $("hold");
    button.setAttribute("aria-pressed", held ? "true" : "false");
    button.textContent = held ? "Resume" : "Hold";
  }

  function toggleHold() {
    const session = phone.session;
    if (!session) {
      return;
    }
    // JsSIP re-INVITEs with a=sendonly to hold and a=sendrecv to resume.
    if (session.isOnHold().local) {
      session.unhold();
    } else {
      session.hold();
    }
  }

  function sendDigit(event) {
    const digit = event.target.getAttribute("data-digit");
    if (digit && phone.session) {
      // JsSIP's default transport for DTMF is SIP INFO (application/dtmf-relay).
      phone.session.sendDTMF(digit);
    }
  }

  async function start() {
    if (typeof JsSIP === "undefined") {
      showError("JsSIP did not load (vendor/jssip.min.js): the gateway's install is incomplete.");
      setStatus("jssip missing");
      return;
    }
    phone.jssipVersion = JsSIP.version;
    setStatus(`jssip ok ${JsSIP.version}; reading config.json`);
    loadAccount();
    $("account").addEventListener("submit", register);
    $("unregister").addEventListener("click", unregister);
    $("dial").addEventListener("submit", dial);
    $("answer").addEventListener("click", answer);
    $("reject").addEventListener("click", reject);
    $("hangup").addEventListener("click", hangup);
    $("mute").addEventListener("click", toggleMute);
    $("hold").addEventListener("click", toggleHold);
    $("keypad").addEventListener("click", sendDigit);
    try {
      const response = await fetch("config.json", { cache: "no-store" });
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      phone.config = await response.json();
    } catch (error) {
      showError(`Cannot read the gateway's config.json: ${error.message || error}`);
      setStatus(`jssip ok ${JsSIP.version}; config missing`);
      return;
    }
    updateButtons();
    setStatus(`jssip ok ${JsSIP.version}; ready`);
  }

  start();
})();
