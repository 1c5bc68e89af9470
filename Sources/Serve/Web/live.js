// Keeps a served page current: when the queue changes (the /events stream), the page's <main>
// is fetched again and swapped in, so what is open in a browser follows a run without a reload.
(function () {
  'use strict';
  var source = new EventSource('/events');
  source.onmessage = function () {
    fetch(location.href).then(function (response) { return response.text(); }).then(function (text) {
      var fresh = new DOMParser().parseFromString(text, 'text/html').querySelector('main');
      if (fresh) document.querySelector('main').replaceWith(fresh);
    });
  };
})();
