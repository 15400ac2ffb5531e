/* lpd-pipeline survey kit: collects the choices and downloads them as CSV (a client-side Blob; nothing is sent).
   Columns: survey_id, respondent, question, choice (the image id). The respondent id is random per page load. */
(function () {
  "use strict";
  var body = document.body;
  var surveyId = body.getAttribute("data-survey-id");
  var columns = body.getAttribute("data-columns").split(",");
  var bytes = new Uint8Array(8);
  (window.crypto || window.msCrypto).getRandomValues(bytes);
  var respondent = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  var questions = Array.prototype.slice.call(document.querySelectorAll("fieldset.question"));
  var button = document.getElementById("download");
  var progress = document.getElementById("progress");

  function answers() {
    var rows = [];
    questions.forEach(function (fieldset) {
      var number = fieldset.id.replace("question-", "");
      var checked = fieldset.querySelector("input:checked");
      if (checked) { rows.push([surveyId, respondent, number, checked.value]); }
    });
    return rows;
  }
  function update() {
    var done = answers().length;
    progress.textContent = done + " of " + questions.length + " questions answered";
    button.disabled = done !== questions.length;
  }
  function csvField(value) {
    value = String(value);
    return /[",\r\n]/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  document.getElementById("quiz").addEventListener("change", update);
  button.addEventListener("click", function () {
    var lines = [columns.join(",")].concat(answers().map(function (row) { return row.map(csvField).join(","); }));
    var blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv;charset=utf-8" });
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "lpd_survey_" + surveyId + "_" + respondent + ".csv";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  });
  update();
})();
