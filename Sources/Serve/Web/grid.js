// Rating from the grid: the ★ and ✕ on a picture (shown on hover or focus), or s, x, u on the
// picture under the pointer or focused. The page refreshes itself from the queue (live.js).
(function () {
  'use strict';
  var current = null;
  function track(event) {
    var item = event.target.closest && event.target.closest('.cell-item');
    if (item) current = item;
  }
  document.addEventListener('mouseover', track);
  document.addEventListener('focusin', track);
  function rate(item, rating) {
    var link = item && item.querySelector('a[data-item]');
    if (!link) return;
    if (link.dataset.rating === rating) rating = 'none';
    fetch(location.pathname + '/' + link.dataset.item + '/rate', {
      method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json'}, body: 'rating=' + rating
    });
  }
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-rate]');
    if (button) { event.preventDefault(); rate(button.closest('.cell-item'), button.dataset.rate); }
  });
  document.addEventListener('keydown', function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var rating = {s: 'starred', x: 'rejected', u: 'none'}[event.key];
    if (rating && current) rate(current, rating);
  });
})();
