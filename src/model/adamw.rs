//! candle_nn's AdamW (decoupled weight decay, Loshchilov & Hutter 2019), restated with its state
//! in reach: `candle_nn::AdamW` keeps its moments and step count private, so a run that stops
//! part-way could only start again from scratch. The arithmetic is candle's, operation for
//! operation, so a step here gives the same bits as a step there (tested below).

use std::collections::HashMap;

use candle_core::{Tensor, Var};
use candle_nn::ParamsAdamW;

/// One trained variable and its first and second moments.
struct Slot {
    name: String,
    var: Var,
    m: Var,
    v: Var,
}

pub struct AdamW {
    slots: Vec<Slot>,
    /// Steps taken (the bias corrections depend on it).
    steps: usize,
    params: ParamsAdamW,
}

impl AdamW {
    /// An optimiser over `vars`, by name (the names key its saved state).
    pub fn new(vars: Vec<(String, Var)>, params: ParamsAdamW) -> candle_core::Result<Self> {
        let slots = vars
            .into_iter()
            .filter(|(_, var)| var.dtype().is_float())
            .map(|(name, var)| {
                let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                Ok(Slot { m: zeros()?, v: zeros()?, name, var })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { slots, steps: 0, params })
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.steps += 1;
        let p = &self.params;
        let (lr, beta1, beta2) = (p.lr, p.beta1, p.beta2);
        let scale_m = 1f64 / (1f64 - beta1.powi(self.steps as i32));
        let scale_v = 1f64 / (1f64 - beta2.powi(self.steps as i32));
        for Slot { var: theta, m, v, .. } in &self.slots {
            if let Some(g) = grads.get(theta) {
                let next_m = ((m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
                let next_v = ((v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                let m_hat = (&next_m * scale_m)?;
                let v_hat = (&next_v * scale_v)?;
                let next_theta = (theta.as_tensor() * (1f64 - lr * p.weight_decay))?;
                let adjusted_grad = (m_hat / (v_hat.sqrt()? + p.eps)?)?;
                let next_theta = (next_theta - (adjusted_grad * lr)?)?;
                m.set(&next_m)?;
                v.set(&next_v)?;
                theta.set(&next_theta)?;
            }
        }
        Ok(())
    }

    /// The moments, as `m.<name>` and `v.<name>` (the variables themselves are the caller's).
    pub fn moments(&self) -> Vec<(String, Tensor)> {
        self.slots.iter().flat_map(|s| [(format!("m.{}", s.name), s.m.as_tensor().clone()), (format!("v.{}", s.name), s.v.as_tensor().clone())]).collect()
    }

    /// Puts back the moments [`Self::moments`] gave and the step count: the optimiser then takes
    /// the steps it would have taken had it never stopped.
    pub fn restore(&mut self, moments: &HashMap<String, Tensor>, steps: usize) -> candle_core::Result<()> {
        for s in &self.slots {
            for (kind, var) in [("m", &s.m), ("v", &s.v)] {
                let key = format!("{kind}.{}", s.name);
                let saved = moments.get(&key).ok_or_else(|| candle_core::Error::Msg(format!("no {key}")))?;
                var.set(saved)?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::Optimizer;

    /// A least-squares problem: `loss(w) = mean((x·w − y)²)`, `w` and `b` trained.
    fn problem() -> (Tensor, Tensor) {
        let x = Tensor::randn(0f32, 1.0, (16, 4), &Device::Cpu).unwrap();
        let y = Tensor::randn(0f32, 1.0, (16, 1), &Device::Cpu).unwrap();
        (x, y)
    }

    fn vars() -> Vec<(String, Var)> {
        let w = Var::from_tensor(&Tensor::new(&[[0.5f32], [-0.3], [0.1], [0.2]], &Device::Cpu).unwrap()).unwrap();
        let b = Var::zeros(1, DType::F32, &Device::Cpu).unwrap();
        vec![("w".into(), w), ("b".into(), b)]
    }

    fn loss(vars: &[(String, Var)], x: &Tensor, y: &Tensor) -> Tensor {
        let pred = x.matmul(vars[0].1.as_tensor()).unwrap().broadcast_add(vars[1].1.as_tensor()).unwrap();
        (pred - y).unwrap().sqr().unwrap().mean_all().unwrap()
    }

    /// New variables holding the same values (`Var::from_tensor` of a variable would share it).
    fn copy_of(vars: &[(String, Var)]) -> Vec<(String, Var)> {
        vars.iter().map(|(n, v)| (n.clone(), Var::from_tensor(&v.as_tensor().copy().unwrap()).unwrap())).collect()
    }

    fn values(vars: &[(String, Var)]) -> Vec<Vec<f32>> {
        vars.iter().map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap()).collect()
    }

    #[test]
    fn a_step_is_candles_adamw_step_to_the_bit() {
        let (x, y) = problem();
        let params = ParamsAdamW { lr: 0.05, weight_decay: 0.01, ..Default::default() };
        let (ours, theirs) = (vars(), vars());
        let mut a = AdamW::new(ours.clone(), params.clone()).unwrap();
        let mut b = candle_nn::AdamW::new(theirs.iter().map(|(_, v)| v.clone()).collect(), params).unwrap();
        for step in 0..12 {
            let lr = 0.05 / (1 + step) as f64;
            a.set_learning_rate(lr);
            b.set_learning_rate(lr);
            a.backward_step(&loss(&ours, &x, &y)).unwrap();
            b.backward_step(&loss(&theirs, &x, &y)).unwrap();
            assert_eq!(values(&ours), values(&theirs), "step {step}");
        }
        assert_ne!(values(&ours), values(&vars()), "trained");
    }

    #[test]
    fn restored_moments_continue_the_run_as_if_it_never_stopped() {
        let (x, y) = problem();
        let params = ParamsAdamW { lr: 0.05, ..Default::default() };
        let whole = vars();
        let mut a = AdamW::new(whole.clone(), params.clone()).unwrap();
        for _ in 0..10 {
            a.backward_step(&loss(&whole, &x, &y)).unwrap();
        }
        // Five steps, saved; a new optimiser on a copy of the variables takes the other five.
        let first = vars();
        let mut b = AdamW::new(first.clone(), params.clone()).unwrap();
        for _ in 0..5 {
            b.backward_step(&loss(&first, &x, &y)).unwrap();
        }
        let saved: HashMap<String, Tensor> = b.moments().into_iter().collect();
        let resumed = copy_of(&first);
        let mut c = AdamW::new(resumed.clone(), params.clone()).unwrap();
        c.restore(&saved, b.steps()).unwrap();
        for _ in 0..5 {
            c.backward_step(&loss(&resumed, &x, &y)).unwrap();
        }
        assert_eq!(values(&resumed), values(&whole));
        // Without the moments (a fresh optimiser), the same five steps land elsewhere.
        let restarted = copy_of(&first);
        let mut d = AdamW::new(restarted.clone(), params).unwrap();
        for _ in 0..5 {
            d.backward_step(&loss(&restarted, &x, &y)).unwrap();
        }
        assert_ne!(values(&restarted), values(&whole));
        assert!(c.restore(&HashMap::new(), 5).is_err(), "moments missing");
    }
}
