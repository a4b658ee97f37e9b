/* Outpost file pages: progressive enhancement only; every page works without it.
 *
 * - An upload form marked data-upload becomes a drop zone: each dropped or chosen file
 *   is sent in its own request (XMLHttpRequest + FormData, the form's other fields
 *   included, Accept: application/json) with a progress bar; the page reloads once all
 *   are stored. Without JS the same form posts one file and the server redirects.
 * - An element with data-open-dialog="ID" opens <dialog id="ID"> as a modal instead of
 *   following its link; data-close-dialog closes the dialog it sits in.
 */
(function () {
  "use strict";

  var RELOAD_DELAY_MS = 400;

  function errorDetail(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (type.indexOf("text/html") === 0 && xhr.responseText) {
      var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var detail = page.querySelector(".error-detail");
      if (detail && detail.textContent.trim()) {
        return detail.textContent.trim();
      }
    }
    return xhr.statusText || "the server refused the file";
  }

  function isJson(xhr) {
    return (xhr.getResponseHeader("Content-Type") || "").indexOf("application/json") === 0;
  }

  function noticeUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("notice", "file-uploaded");
    url.hash = "";
    return url.href;
  }

  function reloadWithNotice() {
    var href = noticeUrl();
    if (href === window.location.href) {
      window.location.reload();
    } else {
      window.location.assign(href);
    }
  }

  function offerReload(list) {
    var item = document.createElement("li");
    item.className = "upload-more";
    var link = document.createElement("a");
    link.href = noticeUrl();
    link.textContent = "Show the files that were uploaded";
    item.appendChild(link);
    list.appendChild(item);
  }

  function row(list, file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    var status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = "waiting";
    item.appendChild(name);
    item.appendChild(bar);
    item.appendChild(status);
    list.appendChild(item);
    return { item: item, bar: bar, status: status };
  }

  function sendOne(form, file, shown, finished) {
    var data = new FormData(form);
    data.set("file", file, file.name);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        shown.bar.value = Math.min(99, Math.floor((event.loaded / event.total) * 100));
        shown.status.textContent = shown.bar.value + "%";
      }
    });
    xhr.addEventListener("load", function () {
      var ok = xhr.status >= 200 && xhr.status < 300 && isJson(xhr);
      if (ok) {
        shown.bar.value = 100;
        shown.status.textContent = xhr.status === 201 ? "uploaded" : "uploaded as a new version";
        shown.item.classList.add("done");
      } else {
        shown.item.classList.add("failed");
        shown.status.textContent =
          "Upload failed (HTTP " + xhr.status + "): " + errorDetail(xhr);
      }
      finished(ok);
    });
    xhr.addEventListener("error", function () {
      shown.item.classList.add("failed");
      shown.status.textContent = "Upload failed: the connection was lost.";
      finished(false);
    });
    shown.status.textContent = "0%";
    xhr.send(data);
  }

  function sendAll(form, files) {
    var list = form.querySelector(".upload-list");
    var button = form.querySelector("button[type=submit]");
    var pending = files.length;
    var failed = 0;
    list.textContent = "";
    button.disabled = true;
    form.classList.add("is-uploading");
    Array.prototype.forEach.call(files, function (file) {
      sendOne(form, file, row(list, file), function (ok) {
        if (!ok) {
          failed += 1;
        }
        pending -= 1;
        if (pending > 0) {
          return;
        }
        form.classList.remove("is-uploading");
        if (failed === 0) {
          window.setTimeout(reloadWithNotice, RELOAD_DELAY_MS);
          return;
        }
        if (failed < files.length) {
          offerReload(list);
        }
        button.disabled = false;
      });
    });
  }

  function enhanceUpload(form) {
    var input = form.querySelector("input[type=file]");
    if (!input || !window.FormData || !window.XMLHttpRequest) {
      return;
    }
    input.multiple = true;
    form.classList.add("dropzone");
    var hint = form.querySelector(".drop-hint");
    if (hint) {
      hint.hidden = false;
    }
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (event) {
        event.preventDefault();
        form.classList.add("is-dragging");
      });
    });
    form.addEventListener("dragleave", function (event) {
      if (!form.contains(event.relatedTarget)) {
        form.classList.remove("is-dragging");
      }
    });
    form.addEventListener("drop", function (event) {
      event.preventDefault();
      form.classList.remove("is-dragging");
      var files = event.dataTransfer && event.dataTransfer.files;
      if (files && files.length) {
        sendAll(form, files);
      }
    });
    form.addEventListener("submit", function (event) {
      if (!input.files || !input.files.length) {
        return; // the browser's "required" message, or the server's
      }
      event.preventDefault();
      sendAll(form, input.files);
    });
  }

  function enhanceDialogs() {
    document.querySelectorAll("[data-open-dialog]").forEach(function (opener) {
      opener.addEventListener("click", function (event) {
        var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
        if (!dialog || typeof dialog.showModal !== "function") {
          return; // follow the link: the server renders the dialog open
        }
        event.preventDefault();
        if (dialog.open) {
          dialog.close();
        }
        dialog.showModal();
      });
    });
    document.querySelectorAll("[data-close-dialog]").forEach(function (closer) {
      closer.addEventListener("click", function (event) {
        var dialog = closer.closest("dialog");
        if (dialog && typeof dialog.close === "function") {
          event.preventDefault();
          dialog.close();
        }
      });
    });
    // A dialog the server rendered open (?share=1, a refused form): make it modal.
    document.querySelectorAll("dialog[open]").forEach(function (dialog) {
      if (typeof dialog.showModal === "function") {
        dialog.close();
        dialog.showModal();
      }
    });
  }

  function start() {
    document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
    enhanceDialogs();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
