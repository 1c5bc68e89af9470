// Compare: the chosen pictures side by side, or one over the other (f, then space to flip), zoom
// (+, -, 0, the wheel) and pan (drag) kept in step across all of them; Esc back to the grid.
(function () {
  'use strict';
  var box = document.querySelector('.compare');
  if (!box) return;
  var scale = 1, x = 0, y = 0, shown = 0, drag = null;
  var figures = Array.from(box.querySelectorAll('figure'));
  box.querySelectorAll('img').forEach(function (img) {
    function fit() {
      img.classList.toggle('pixelated', img.naturalWidth < img.parentNode.clientWidth && img.naturalHeight < img.parentNode.clientHeight);
    }
    if (img.complete) fit(); else img.addEventListener('load', fit);
  });
  function apply() {
    box.querySelectorAll('img').forEach(function (img) {
      img.style.transform = 'translate(' + x + 'px,' + y + 'px) scale(' + scale + ')';
    });
  }
  function flip() { figures.forEach(function (figure, i) { figure.classList.toggle('shown', i === shown); }); }
  document.addEventListener('keydown', function (event) {
    if (event.key === 'f') { box.classList.toggle('flip'); flip(); }
    else if (event.key === ' ' && box.classList.contains('flip')) { event.preventDefault(); shown = (shown + 1) % figures.length; flip(); }
    else if (event.key === '+' || event.key === '=') { scale *= 1.25; apply(); }
    else if (event.key === '-') { scale /= 1.25; apply(); }
    else if (event.key === '0') { scale = 1; x = 0; y = 0; apply(); }
    else if (event.key === 'Escape') { location.assign(box.dataset.grid); }
  });
  box.addEventListener('pointerdown', function (event) { drag = {x: event.clientX - x, y: event.clientY - y}; });
  window.addEventListener('pointerup', function () { drag = null; });
  box.addEventListener('pointermove', function (event) {
    if (drag) { x = event.clientX - drag.x; y = event.clientY - drag.y; apply(); }
  });
  box.addEventListener('wheel', function (event) {
    event.preventDefault();
    scale *= event.deltaY < 0 ? 1.1 : 1 / 1.1;
    apply();
  }, {passive: false});
})();
