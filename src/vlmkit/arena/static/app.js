// The arena page: an image and a prompt go to /arena/battle; two anonymous answers stream back as
// server-sent events labelled "a" and "b"; a vote goes to /arena/vote, whose answer names the models.
"use strict";

const $ = (id) => document.getElementById(id);
const voteButtons = () => [...document.querySelectorAll("#votes button")];
let image = null; // a data: URL
let battle = null; // the id of the battle waiting for a vote

function status(text) {
  $("status").textContent = text;
}

function readImage(file) {
  if (!file || !file.type.startsWith("image/")) {
    status("That is not an image file.");
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    image = reader.result;
    $("preview").src = image;
    $("preview").hidden = false;
    $("drop-text").textContent = file.name;
  };
  reader.readAsDataURL(file);
}

function reset() {
  battle = null;
  for (const side of ["a", "b"]) {
    $(`answer-${side}`).textContent = "";
    $(`answer-${side}`).className = "answer";
    $(`answer-${side}`).removeAttribute("data-done");
    $(`name-${side}`).hidden = true;
    $(`name-${side}`).textContent = "";
  }
  voteButtons().forEach((button) => (button.disabled = true));
}

async function errorMessage(response) {
  try {
    return (await response.json()).error.message;
  } catch {
    return `the server answered ${response.status}`;
  }
}

function handle(event) {
  if (event.battle) battle = event.battle;
  const answer = event.side ? $(`answer-${event.side}`) : null;
  if (answer && event.text) answer.textContent += event.text;
  if (answer && event.done) answer.dataset.done = "true";
  if (answer && event.error) {
    answer.classList.add("error");
    answer.textContent += ` [${event.error}]`;
    answer.dataset.done = "true";
  }
  if (!event.side && event.error) status(`Error: ${event.error}`);
  if (event.ready) {
    voteButtons().forEach((button) => (button.disabled = false));
    status("Which answer is better?");
  }
}

async function ask(prompt) {
  reset();
  $("send").disabled = true;
  status("Both models are answering…");
  try {
    const response = await fetch("/arena/battle", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt, image }),
    });
    if (!response.ok) {
      status(`Error: ${await errorMessage(response)}`);
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (line.startsWith("data: ")) handle(JSON.parse(line.slice(6)));
      }
    }
  } catch (error) {
    status(`Error: ${error.message}`);
  } finally {
    $("send").disabled = false;
  }
}

async function vote(winner) {
  voteButtons().forEach((button) => (button.disabled = true));
  const response = await fetch("/arena/vote", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ battle, winner }),
  });
  if (!response.ok) {
    status(`Error: ${await errorMessage(response)}`);
    return;
  }
  const result = await response.json();
  for (const side of ["a", "b"]) {
    $(`name-${side}`).textContent = `(${result[`model_${side}`]})`;
    $(`name-${side}`).hidden = false;
  }
  battle = null;
  status("Thank you, your vote is counted. Ask again for a new battle.");
}

$("image-input").addEventListener("change", (event) => readImage(event.target.files[0]));
const zone = $("drop-zone");
zone.addEventListener("click", () => $("image-input").click());
zone.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") $("image-input").click();
});
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  readImage(event.dataTransfer.files[0]);
});
$("battle-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const prompt = $("prompt").value.trim();
  if (prompt) ask(prompt);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("battle-form").requestSubmit();
  }
});
voteButtons().forEach((button) => button.addEventListener("click", () => vote(button.dataset.winner)));
