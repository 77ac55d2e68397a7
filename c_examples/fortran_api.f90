!> fortran_api: a tour of the sbridge Fortran module (ffi/sbridge.f90) that checks what it does.
!>
!>   fortran_api [IMAGE_OUT RESULTS_OUT]
!>
!> Fits a 2-D data set X(2, M) in double and single precision through the generic sb_fit, runs
!> every bridge query (weights, log-weights, mean, mean and covariance, score, log-density, rho)
!> in both kinds, sampler chains (covariance noise with records, a conditioned chain, and the
!> Bayesian scheme with a gradient written in Fortran), the closure call and the batched closure
!> call, the layout builders, image save/load, copies of the model object, and the failure paths
!> (short buffers, wrong float kind, bad arguments): each returns its status and leaves the
!> outputs unchanged. Stops with a non-zero code on the first failed check.
!>
!> With arguments, the double-precision image and the query results at x = (0.3, -0.2) (mean(2),
!> cov(2,2), score(2), log-density, rho, weights(M)) are written as raw bytes / doubles, so that
!> tests/c_abi.rs can recompute them with the Rust API and compare the bits.
!> Gradient callbacks for the Bayesian chains (bind(c) procedures must be module procedures to
!> have a C address with c_funloc).
module fortran_api_callbacks
   use, intrinsic :: iso_c_binding
   implicit none
   private
   public :: grad_quadratic, grad_nan, grad_fails, ieee_nan

contains

   function ieee_nan() result(v)
      real(c_double) :: v
      v = transfer(int(z'7FF8000000000000', c_int64_t), v)
   end function

   !> grad V(x) = x, for V(x) = |x|^2/2.
   function grad_quadratic(xp, n, gp, user) bind(c) result(st)
      type(c_ptr), value :: xp, gp, user
      integer(c_size_t), value :: n
      integer(c_int32_t) :: st
      real(c_double), pointer :: xv(:), gv(:)
      call c_f_pointer(xp, xv, [n])
      call c_f_pointer(gp, gv, [n])
      gv = xv
      st = merge(0_c_int32_t, 1_c_int32_t, .not. c_associated(user))
   end function

   function grad_nan(xp, n, gp, user) bind(c) result(st)
      type(c_ptr), value :: xp, gp, user
      integer(c_size_t), value :: n
      integer(c_int32_t) :: st
      real(c_double), pointer :: gv(:)
      call c_f_pointer(gp, gv, [n])
      gv = ieee_nan()
      st = 0
      if (c_associated(xp, user)) st = 1
   end function

   function grad_fails(xp, n, gp, user) bind(c) result(st)
      type(c_ptr), value :: xp, gp, user
      integer(c_size_t), value :: n
      integer(c_int32_t) :: st
      st = 5
      if (n == 0 .and. c_associated(xp, gp) .and. c_associated(user)) st = 6
   end function

end module fortran_api_callbacks

program fortran_api
   use, intrinsic :: iso_c_binding
   use, intrinsic :: iso_fortran_env, only: error_unit
   use sbridge
   use fortran_api_callbacks
   implicit none

   integer, parameter :: m = 120, d = 2
   real(c_double), parameter :: two_pi = 6.283185307179586_c_double
   integer :: checks = 0

   type(sbridge_model) :: model, model32, copy, loaded
   type(sbridge_layout) :: single, stencil, closure_layout, temporal
   type(sb_fit_config_t) :: cfg
   type(sb_fit_report_t) :: report
   type(sb_model_info_t) :: info
   type(sb_head_info_t) :: head
   type(sb_workspace_lens_t) :: lens, lens32
   type(sb_step_config_t) :: step
   type(sb_closure_config_t) :: ccfg
   type(sb_rng_t) :: rng, rng_copy
   type(sb_rng_t) :: rngs(3)
   real(c_double) :: x(d, m), scales(d), q(d), mean(d), cov(d, d), score(d), logd, rho
   real(c_double) :: w(m), lw(m), xs(d), half(d), rec_half(d, 5), rec_proj(d, 5), sentinel(m)
   real(c_double), allocatable :: work(:), cwork(:)
   real(c_float) :: x32(d, m), q32(d), mean32(d), cov32(d, d), w32(m), xs32(d), half32(d)
   real(c_float) :: logd32, rho32, score32(d), lw32(m)
   real(c_float), allocatable :: work32(:)
   integer(c_size_t) :: z_coords(1), failed
   real(c_double) :: z_star(1), psi(1), z_batch(1, 3), psi_batch(1, 3), psi_seq(1, 3)
   real(c_float) :: z_star32(1), psi32(1)
   character(len=4096) :: image_out, results_out
   type(c_funptr) :: gq, gn, gf
   integer :: j, unit
   real(c_double) :: t, r

   ! ---- data: a noisy unit circle, one sample per column (X(d, M), sample-major in memory) ----
   do j = 1, m
      t = two_pi * real(j - 1, c_double) / real(m, c_double)
      r = 1.0_c_double + 0.05_c_double * sin(7.0_c_double * t)
      x(:, j) = [r * cos(t), r * sin(t)]
   end do
   x32 = real(x, c_float)
   scales = [1.0_c_double, 2.0_c_double]

   ! ---- layouts ----
   call expect(sb_layout_new_single_head(single, d), SB_OK, 'single-head layout')
   call expect_true(single%handle%n_heads == 1 .and. single%handle%nb_len == 2, 'single-head sizes')
   call expect(sb_layout_new_periodic_stencil(stencil, 7, 1), SB_OK, 'periodic stencil')
   call expect_true(stencil%handle%n_heads == 7 .and. all(stencil%nb_coords(1:3) == [6, 0, 1]), &
                    'stencil head 0 sees 6, 0, 1')
   call expect(sb_layout_new_closure(closure_layout, 4, 2, 1), SB_OK, 'closure layout')
   call expect_true(closure_layout%handle%d == 8 .and. closure_layout%tg_coords(1) == 4, &
                    'closure layout targets psi_0 = coordinate 4')
   call expect(sb_layout_new_temporal(temporal, 2, 3), SB_OK, 'temporal layout')
   call expect_true(temporal%handle%d == 8, 'temporal layout d')
   call expect(sb_layout_new_periodic_stencil(stencil, 2, 1), SB_INVALID_LAYOUT, &
               'stencil wider than the ring')

   ! ---- fit, double and single ----
   cfg = sb_fit_config_t(eps=0.05_c_double)
   call expect(sb_fit(model, x, single, cfg, scales=scales, report=report), SB_OK, 'fit f64')
   call expect_true(report%n_heads == 1 .and. report%max_residual <= 1.0e-12_c_double, &
                    'fit f64 report')
   call expect(sb_info(model, info), SB_OK, 'info')
   call expect_true(info%d == d .and. info%m == m .and. info%float_size == 8 .and. &
                    info%has_scales == 1, 'info fields')
   call expect(sb_head(model, 0, head), SB_OK, 'head 0')
   call expect_true(head%dim == 2 .and. head%n_targets == 2, 'head 0 fields')
   call expect(sb_head(model, 1, head), SB_INVALID_INDEX, 'head 1 does not exist')
   call expect(sb_workspace(model, lens), SB_OK, 'workspace lengths')
   call expect(sb_fit(model32, x32, single, cfg, scales=real(scales, c_float), report=report), &
               SB_OK, 'fit f32')
   call expect(sb_workspace(model32, lens32), SB_OK, 'workspace lengths f32')
   call expect_true(sb_float_size(model32) == 4 .and. sb_float_size(model) == 8, 'float sizes')

   ! ---- bridge queries ----
   allocate (work(lens%query), work32(lens32%query))
   q = [0.3_c_double, -0.2_c_double]
   q32 = real(q, c_float)
   call expect(sb_weights(model, 0, q, w, work), SB_OK, 'weights')
   call expect_true(abs(sum(w) - 1) <= 1.0e-12_c_double .and. all(w >= 0), 'weights sum to one')
   call expect(sb_log_weights(model, 0, q, lw, work), SB_OK, 'log-weights')
   call expect_true(maxval(abs(exp(lw) - w)) <= 1.0e-12_c_double, 'exp(log w) = w')
   call expect(sb_mean(model, 0, q, mean, work), SB_OK, 'mean')
   call expect_true(maxval(abs(mean - matmul(x, w))) <= 1.0e-12_c_double, 'mean = X w')
   call expect(sb_mean_cov(model, 0, q, mean, cov, work), SB_OK, 'mean and covariance')
   call expect_true(abs(cov(1, 2) - cov(2, 1)) <= 1.0e-14_c_double .and. cov(1, 1) > 0, &
                    'covariance symmetric')
   call expect(sb_score(model, 0, q, score, work), SB_OK, 'score')
   call expect_true(maxval(abs(score - (mean - q) / 0.05_c_double)) <= 1.0e-9_c_double, &
                    'score = (m - x)/eps')
   call expect(sb_log_density(model, 0, q, logd, work), SB_OK, 'log-density')
   call expect(sb_rho(model, 0, q, rho, work), SB_OK, 'rho')
   call expect_true(same(rho, 1.0_c_double), 'fixed bandwidth: rho = 1')
   call expect(sb_weights(model32, 0, q32, w32, work32), SB_OK, 'weights f32')
   call expect_true(abs(sum(w32) - 1) <= 1.0e-4, 'weights f32 sum to one')
   call expect(sb_log_weights(model32, 0, q32, lw32, work32), SB_OK, 'log-weights f32')
   call expect(sb_mean(model32, 0, q32, mean32, work32), SB_OK, 'mean f32')
   call expect(sb_mean_cov(model32, 0, q32, mean32, cov32, work32), SB_OK, 'mean/cov f32')
   call expect(sb_score(model32, 0, q32, score32, work32), SB_OK, 'score f32')
   call expect(sb_log_density(model32, 0, q32, logd32, work32), SB_OK, 'log-density f32')
   call expect(sb_rho(model32, 0, q32, rho32, work32), SB_OK, 'rho f32')
   call expect_true(maxval(abs(real(mean32, c_double) - mean)) <= 1.0e-3_c_double, &
                    'f32 mean close to f64 mean')

   ! ---- failure paths leave outputs unchanged ----
   sentinel = -7.0_c_double
   w = sentinel
   call expect(sb_weights(model, 0, q, w, work(1:1)), SB_BUFFER_TOO_SMALL, 'short work space')
   call expect_true(all(same(w, sentinel)), 'weights unchanged after a failure')
   call expect(sb_weights(model, 0, q, w(1:m - 1), work), SB_LENGTH_MISMATCH, 'short output')
   call expect_true(all(same(w, sentinel)), 'weights unchanged after a short output')
   call expect(sb_mean(model, 3, q, xs, work), SB_INVALID_INDEX, 'bad head index')
   call expect(sb_weights(model, 0, [q(1), ieee_nan()], w, work), SB_NON_FINITE_STATE, 'NaN query')
   call expect_true(all(same(w, sentinel)), 'weights unchanged after a NaN query')

   ! ---- copies and files: the handle follows the image ----
   ! `mean` and `cov` last came from sb_mean_cov (the two-pass path), so compare with the same
   ! call: sb_mean (the fused pass) may differ from it in the last bit.
   copy = model
   call expect(sb_mean_cov(copy, 0, q, xs, cov, work), SB_OK, 'mean on a copy of the model')
   call expect_true(all(same(xs, mean)), 'copy gives the same mean')
   if (command_argument_count() >= 2) then
      call get_command_argument(1, image_out)
      call get_command_argument(2, results_out)
      call expect(sb_save(model, trim(image_out)), SB_OK, 'save image')
      call expect(sb_load(loaded, trim(image_out)), SB_OK, 'load image')
      call expect(sb_mean_cov(loaded, 0, q, xs, cov, work), SB_OK, 'mean on the loaded model')
      call expect_true(all(same(xs, mean)), 'loaded model gives the same mean')
      call expect(sb_weights(loaded, 0, q, w, work), SB_OK, 'weights on the loaded model')
      open (newunit=unit, file=trim(results_out), access='stream', form='unformatted', &
            status='replace', action='write')
      write (unit) mean, cov, score, logd, rho, w
      close (unit)
   end if

   ! ---- chains ----
   deallocate (work)
   allocate (work(lens%chain))
   step = sb_step_config_t(scheme=SB_SCHEME_COVARIANCE)
   call expect(sb_rng_seed(7_c_int64_t, 1_c_int64_t, rng), SB_OK, 'seed')
   rng_copy = rng
   xs = x(:, 1)
   call expect(sb_chain(model, step, xs, half, 5, rng, work, record_half=rec_half, &
                        record_proj=rec_proj), SB_OK, 'covariance chain with records')
   call expect_true(all(same(rec_proj(:, 5), xs)) .and. all(same(rec_half(:, 5), half)), 'records')
   call expect_true(abs(norm2(xs) - 1) < 0.2_c_double, 'chain stays near the circle')
   ! The RNG state is plain data: a copy replays the same chain bit for bit.
   xs = x(:, 1)
   call expect(sb_chain(model, step, xs, half, 5, rng_copy, work), SB_OK, 'replayed chain')
   call expect_true(all(same(xs, rec_proj(:, 5))), 'RNG checkpoint replays bit for bit')
   ! Conditioned on x_1 = 0.6 (0-based coordinate 0).
   xs = x(:, 1)
   call expect(sb_chain(model, step, xs, half, 3, rng, work, &
                        clamp_coords=[0_c_size_t], clamp_values=[0.6_c_double]), SB_OK, &
               'conditioned chain')
   ! The Bayesian scheme with a Fortran gradient of V(x) = |x|^2 / 2.
   gq = c_funloc(grad_quadratic)
   gn = c_funloc(grad_nan)
   gf = c_funloc(grad_fails)
   step = sb_step_config_t(scheme=SB_SCHEME_BAYESIAN)
   xs = x(:, 1)
   call expect(sb_chain(model, step, xs, half, 3, rng, work, grad=gq), &
               SB_OK, 'Bayesian chain with a Fortran gradient')
   xs = x(:, 1)
   rec_proj = -7
   call expect(sb_chain(model, step, xs, half, 3, rng, work, grad=gn), &
               SB_NON_FINITE_GRADIENT, 'gradient returning NaN')
   call expect_true(all(same(xs, x(:, 1))), 'state unchanged after a NaN gradient')
   call expect(sb_chain(model, step, xs, half, 3, rng, work, grad=gf), &
               SB_CALLBACK_FAILED, 'gradient returning non-zero')
   call expect(sb_chain(model, step, xs, half, 3, rng, work), SB_NULL_POINTER, &
               'Bayesian scheme without a gradient')
   deallocate (work32)
   allocate (work32(lens32%chain))
   step = sb_step_config_t(scheme=SB_SCHEME_ISOTROPIC)
   xs32 = x32(:, 1)
   call expect(sb_chain(model32, step, xs32, half32, 3, rng, work32), SB_OK, 'f32 chain')

   ! ---- the closure call: condition x_1 (coordinate 0) and sample x_2 ----
   allocate (cwork(lens%closure))
   z_coords = [0_c_size_t]
   z_star = [0.8_c_double]
   psi = [0.0_c_double]
   ccfg = sb_closure_config_t(sweeps=5, init=SB_INIT_WARM, scheme=SB_SCHEME_ISOTROPIC, &
                              noise=SB_NOISE_GLOBAL)
   call expect(sb_closure(model, ccfg, z_coords, z_star, psi, rng, cwork), SB_OK, 'closure f64')
   call expect_true(abs(abs(psi(1)) - 0.6_c_double) < 0.25_c_double, &
                    'closure samples x_2 = +-0.6 given x_1 = 0.8')
   psi = ieee_nan()
   call expect(sb_closure(model, ccfg, z_coords, z_star, psi, rng, cwork), SB_NON_FINITE_STATE, &
               'NaN warm start')
   call expect(sb_closure(model, ccfg, z_coords, z_star, psi(1:0), rng, cwork), &
               SB_LENGTH_MISMATCH, 'psi of the wrong length')
   ! Batched columns give the same bits as one call per column with the same streams.
   z_batch(1, :) = [0.8_c_double, -0.5_c_double, 0.1_c_double]
   psi_batch = 0
   psi_seq = 0
   do j = 1, 3
      call expect(sb_rng_seed(11_c_int64_t, int(j, c_int64_t), rngs(j)), SB_OK, 'seed column')
   end do
   call expect(sb_closure_batch(model, ccfg, z_coords, z_batch, psi_batch, rngs, cwork, failed), &
               SB_OK, 'closure batch')
   do j = 1, 3
      call expect(sb_rng_seed(11_c_int64_t, int(j, c_int64_t), rng), SB_OK, 'seed column')
      call expect(sb_closure(model, ccfg, z_coords, z_batch(:, j), psi_seq(:, j), rng, cwork), &
                  SB_OK, 'closure column')
   end do
   call expect_true(all(same(psi_batch, psi_seq)), 'batch = column by column, bit for bit')
   z_batch(1, 2) = ieee_nan()
   failed = 99
   call expect(sb_closure_batch(model, ccfg, z_coords, z_batch, psi_batch, rngs, cwork, failed), &
               SB_NON_FINITE_STATE, 'batch with a NaN column')
   call expect_true(failed == 1, 'failed column reported (0-based)')
   deallocate (work32)
   allocate (work32(lens32%closure))
   z_star32 = [0.8]
   psi32 = [0.0]
   call expect(sb_closure(model32, ccfg, z_coords, z_star32, psi32, rng, work32), SB_OK, &
               'closure f32')
   ! A float model through a double entry point is refused.
   call expect(sb_closure(model32, ccfg, z_coords, z_star, psi, rng, cwork), &
               SB_IMAGE_WRONG_FLOAT_KIND, 'f32 model through the f64 closure')

   call expect_true(len(sb_message(SB_NULL_POINTER)) > 0, 'status message')
   call expect_true(len(sb_version_string()) >= 5, 'version string')

   call sb_free(model)
   call sb_free(model32)
   call sb_free(copy)
   call sb_free(loaded)
   call sb_free(single)
   call sb_free(stencil)
   call sb_free(closure_layout)
   call sb_free(temporal)
   deallocate (work, work32, cwork)
   write (*, '(a, i0, a)') 'fortran_api: all ', checks, ' checks passed'

contains

   subroutine expect(status, want, what)
      integer(c_int), intent(in) :: status, want
      character(len=*), intent(in) :: what
      checks = checks + 1
      if (status /= want) then
         write (error_unit, '(a, a, a, i0, a, a, a, i0)') 'FAILED: ', what, ': status ', status, &
            ' (', sb_message(status), '), expected ', want
         error stop 1
      end if
   end subroutine

   subroutine expect_true(ok, what)
      logical, intent(in) :: ok
      character(len=*), intent(in) :: what
      checks = checks + 1
      if (.not. ok) then
         write (error_unit, '(a, a)') 'FAILED: ', what
         error stop 1
      end if
   end subroutine

   !> Bitwise equality (exact comparisons without -Wcompare-reals warnings).
   elemental logical function same(a, b)
      real(c_double), intent(in) :: a, b
      same = transfer(a, 0_c_int64_t) == transfer(b, 0_c_int64_t)
   end function

end program fortran_api
